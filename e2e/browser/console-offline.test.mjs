// The console's Machines page in Chromium when a machine loses control and comes back: an
// agent (`tsconnect up` as a process) that stops shows, live, as "Offline: lost control …"
// with the time in its tooltip and "SSH…" disabled, and minutes later says how long ago;
// started again on the same state it turns Online again without a reload, as the same
// machine (same ID, no second row).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { launch, artifacts, ensureArtifacts } from "./demo.js";
import { startConsoleNet, startUntil, consoleLogin, machineRow, alice, watchPage } from "./console-harness.mjs";

let net;
let browser;

before(async () => {
  net = await startConsoleNet({ tagged: [] });
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await net?.stop();
});

/** Runs `tsconnect up --ssh` as delta on state dir adir (a key only the first time); resolves once up. */
async function upDelta(adir, key) {
  const args = ["up", "--ssh", "--login-server", net.url, "--hostname", "delta", "--state", adir, ...(key ? ["--auth-key", key] : [])];
  const a = await startUntil(args, /up: node \S+/, { TSCONNECT_SOCKET: join(net.dir, "delta.sock") }, "up delta");
  net.track(a.proc);
  return a.proc;
}

/** Stops proc with SIGTERM and waits for it to exit. */
async function stop(proc) {
  const exited = new Promise((r) => proc.once("exit", r));
  proc.kill("SIGTERM");
  await exited;
}

test("a machine that loses control shows as offline since then, and turns online again live when it is back", async (t) => {
  const context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
  t.after(() => context.close());
  const page = await context.newPage();
  const problems = [];
  watchPage(problems)(page);
  t.after(() => assert.deepEqual(problems, [], "no page errors and no dialogs"));

  const adir = join(net.dir, "delta-state");
  const key = net.admin(["keys", "create", "--tags", "tag:server"]).trim().split("\n").pop();
  let agent = await upDelta(adir, key);
  await page.clock.install(); // runs at real speed until fast-forwarded
  await consoleLogin(page, net.url, alice);
  const row = machineRow(page, "delta");
  await row.locator(".online", { hasText: "Online" }).waitFor();
  const id = await row.getAttribute("data-id");
  await page.evaluate(() => {
    /** @type {any} */ (window).notReloaded = true;
  });

  await stop(agent);
  const status = row.locator(".offline");
  await status.waitFor({ timeout: 10_000 });
  assert.match((await status.textContent()) ?? "", /^Offline: lost control (just now|\d+ min ago)$/);
  assert.match((await status.getAttribute("title")) ?? "", /^no connection to control since \S/);
  assert.equal(await row.locator(".ssh-button").isDisabled(), true, "SSH… is disabled while the machine is offline");
  const api = (await net.machines()).find((m) => m.name === "delta");
  assert.equal(api.online, false);
  assert.ok(Date.now() - Date.parse(api.lastSeen) < 60_000, `lastSeen ${api.lastSeen} is when it went away`);
  // Minutes later, with no update from control, the row says how long ago.
  await page.clock.fastForward("02:00");
  await row.locator(".offline", { hasText: "Offline: lost control 2 min ago" }).waitFor();
  ensureArtifacts();
  await page.screenshot({ path: join(artifacts, "console-machine-offline.png") });

  agent = await upDelta(adir);
  await row.locator(".online", { hasText: "Online" }).waitFor({ timeout: 10_000 });
  assert.equal(await row.locator(".ssh-button").isDisabled(), false);
  assert.equal(await page.evaluate(() => /** @type {any} */ (window).notReloaded), true, "updated live, without a reload");
  assert.equal(await row.getAttribute("data-id"), id, "the same machine");
  const all = await net.machines();
  assert.deepEqual(
    all.map((m) => [m.id, m.name, m.online]),
    [[Number(id), "delta", true]],
  );
  await stop(agent);
});
