// The console's Machines page on a network larger than a page, in Chromium: the list comes
// a page at a time from the server (GET /api/v1/nodes?limit=&after=&q=) with the total,
// Next and Previous walk it, the search box asks the server, and a change on the page shown
// arrives live while the events WebSocket carries only the IDs that changed, never the list.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launch } from "./demo.js";
import { startConsoleNet, consoleLogin, machineRow, alice, watchPage } from "./console-harness.mjs";

const count = 105; // three pages of 50
const haiku = new Set(["m-007", "m-057", "m-097"]);
let net;
let browser;
/** @type {Map<string, any>} the raw nodes by name */
const nodes = new Map();

before(async () => {
  net = await startConsoleNet({ tagged: [] });
  const names = Array.from({ length: count }, (_, i) => `m-${String(i + 1).padStart(3, "0")}`);
  for (let i = 0; i < names.length; i += 5) {
    const batch = names.slice(i, i + 5);
    const got = await Promise.all(batch.map((n) => net.rawNode({ hostname: n, os: haiku.has(n) ? "haiku" : "linux" })));
    got.forEach((node, j) => nodes.set(batch[j], node));
  }
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await net?.stop();
});

/** The names in the table, in order. */
const shown = (page) => page.locator("table.machines tbody tr").evaluateAll((trs) => trs.map((tr) => tr.getAttribute("data-machine")));

/** Waits until the range line reads text. */
async function range(page, text) {
  await page.locator(".page-range", { hasText: text }).waitFor({ timeout: 15_000 });
}

test("machines page by page with the total, server-side search, and a live change on the page shown", async (t) => {
  const context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
  t.after(() => context.close());
  const page = await context.newPage();
  const problems = [];
  watchPage(problems)(page);
  t.after(() => assert.deepEqual(problems, [], "no page errors and no dialogs"));
  /** Every message of the events WebSocket, as received. */
  const frames = [];
  page.on("websocket", (ws) => {
    if (ws.url().includes("/api/v1/events")) ws.on("framereceived", (f) => frames.push(String(f.payload)));
  });

  await consoleLogin(page, net.url, alice);
  await range(page, `1–50 of ${count}`);
  const prev = page.getByRole("button", { name: "Previous" });
  const next = page.getByRole("button", { name: "Next" });
  assert.equal(await prev.isDisabled(), true, "no page before the first");
  const first = await shown(page);
  assert.equal(first.length, 50);

  await next.click();
  await range(page, `51–100 of ${count}`);
  const second = await shown(page);
  assert.equal(second.length, 50);
  await next.click();
  await range(page, `101–${count} of ${count}`);
  const third = await shown(page);
  assert.equal(third.length, count - 100);
  assert.equal(await next.isDisabled(), true, "no page after the last");
  assert.deepEqual([...first, ...second, ...third].sort(), [...nodes.keys()].sort(), "the pages hold every machine once");
  await page.evaluate(() => {
    /** @type {any} */ (window).notReloaded = true;
  });

  // Live on the page shown: one of its machines goes offline, and a new machine lands on it.
  const gone = third[0];
  const row = machineRow(page, gone);
  await row.locator(".online").waitFor();
  nodes.get(gone).proc.kill("SIGTERM");
  await row.locator(".offline").waitFor({ timeout: 15_000 });
  const fresh = await net.rawNode({ hostname: "m-new" });
  await machineRow(page, "m-new").waitFor({ timeout: 15_000 });
  await range(page, `of ${count + 1}`);
  assert.equal(await page.evaluate(() => /** @type {any} */ (window).notReloaded), true, "updated without a reload");
  fresh.proc.kill("SIGTERM");

  await prev.click();
  await range(page, `51–100 of ${count + 1}`);
  assert.deepEqual(await shown(page), second);

  // Search: the server's answer, with its own total; a search that matches nothing says so.
  const search = page.getByRole("searchbox", { name: "Search machines" });
  await search.fill("haiku");
  await range(page, "1–3 of 3 matching");
  assert.deepEqual((await shown(page)).sort(), [...haiku].sort());
  assert.equal(await next.isDisabled(), true);
  await search.fill("no-such-machine");
  await page.locator(".empty", { hasText: "No machines match “no-such-machine”." }).waitFor();
  assert.equal((await shown(page)).length, 0);
  await search.fill("");
  await range(page, `1–50 of ${count + 1}`);

  // The live feed named what changed; it never carried the list of machines.
  assert.ok(frames.length >= 2, `events messages: ${frames.length}`);
  for (const f of frames) {
    const m = JSON.parse(f);
    assert.equal(m.type, "changes", f);
    assert.equal(m.nodes, undefined, f);
    assert.ok(f.length < 1024, `an events message of ${f.length} bytes`);
  }
});
