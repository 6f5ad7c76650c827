// The demo page says clearly what failed. The page's own session request is answered for
// real, then rewritten on its way to the page, so the page meets a bad key, a used key and
// an unreachable control server exactly as it would from a misconfigured embedding.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startDemo, launch } from "./demo.js";

/** Opens the demo with the session response rewritten by edit; returns the #error element's code and text. */
async function openWith(browser, demo, edit) {
  const page = await browser.newPage();
  await page.route("**/api/demo/session", async (route) => {
    const resp = await route.fetch();
    const body = await resp.json();
    await route.fulfill({ response: resp, json: edit(body) });
  });
  await page.goto(await demo.takeURL()); // each URL's token opens one session
  const err = page.locator("#error");
  await err.waitFor({ state: "visible", timeout: 30_000 });
  const result = { code: await err.getAttribute("data-code"), text: await err.textContent() };
  await page.close();
  return result;
}

test("the page names each failure and registers nothing", async (t) => {
  const demo = await startDemo();
  t.after(() => demo.stop());
  const browser = await launch();
  t.after(() => browser.close());
  const before = demo.nodes().length;

  const bad = await openWith(browser, demo, (s) => ({ ...s, authKey: "tskey-000000000000-" + "0".repeat(40) }));
  assert.equal(bad.code, "invalid_key");
  assert.match(bad.text, /Bad auth key/);

  // A key that a first page consumed, handed to a second page.
  let first;
  const page = await browser.newPage();
  await page.route("**/api/demo/session", async (route) => {
    const resp = await route.fetch();
    first = await resp.json();
    await route.fulfill({ response: resp, json: first });
  });
  await page.goto(await demo.takeURL());
  await page.locator('#status[data-state="connected"]').waitFor({ timeout: 30_000 });
  const used = await openWith(browser, demo, (s) => ({ ...s, authKey: first.authKey }));
  assert.equal(used.code, "used_key");
  assert.match(used.text, /already used/);
  await page.close();

  const gone = await openWith(browser, demo, (s) => ({ ...s, controlURL: "http://127.0.0.1:9" }));
  assert.equal(gone.code, "control_unreachable");
  assert.match(gone.text, /Control unreachable/);

  // Only the demo agent and the one good page ever registered.
  const ephemeral = demo.nodes().filter((n) => n.ephemeral).length;
  assert.ok(demo.nodes().length - before <= 1 && ephemeral <= 1, `refused keys registered nodes: ${JSON.stringify(demo.nodes())}`);
});
