// The demo in a real browser: open the printed URL, get a shell on this machine through the
// whole path, run a command, exit, and see the ephemeral browser node disappear.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { startDemo, launch, waitTerminal, terminalText, artifacts, ensureArtifacts } from "./demo.js";

test("demo page reaches a shell through control, relay, WireGuard and sshd", async (t) => {
  const demo = await startDemo({ grace: "5s" });
  t.after(() => demo.stop());
  const browser = await launch();
  t.after(() => browser.close());
  const page = await browser.newPage();
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(String(e)));

  const started = Date.now();
  await page.goto(demo.url);
  await page.locator(".xterm-rows").waitFor();
  // A login shell prompt ends in $ or # (root).
  await waitTerminal(page, /[$#] *$/m);
  t.diagnostic(`click to prompt: ${Date.now() - started} ms (cold, incl. wasm compile)`);

  await page.locator(".xterm-helper-textarea").focus();
  await page.keyboard.type("echo $((6*7))\n");
  await waitTerminal(page, /^42\s*$/m);

  // Reached through the overlay: sshd saw the browser node's overlay address.
  const browserNode = demo.nodes().find((n) => n.ephemeral);
  assert.ok(browserNode, "the browser node is in the control node list");
  const browserAddr = browserNode.addresses[0].split("/")[0];
  await page.keyboard.type("echo conn=$SSH_CONNECTION\n");
  const text = await waitTerminal(page, /^conn=\S+ /m);
  assert.match(
    text,
    new RegExp(`^conn=${browserAddr.replace(/\./g, "\\.")} `, "m"),
    `SSH_CONNECTION names the browser node's overlay address ${browserAddr}`,
  );

  ensureArtifacts();
  await page.screenshot({ path: join(artifacts, "demo-session.png") });

  await page.keyboard.type("exit\n");
  await page
    .locator("#status")
    .filter({ hasText: /exit|closed|ended/i })
    .waitFor({ timeout: 10_000 });
  // The session over, the node leaves at once and the Worker (the Go runtime) ends.
  const left = Date.now() + 10_000;
  while (page.workers().length > 0 || demo.nodes().some((n) => n.id === browserNode.id)) {
    assert.ok(
      Date.now() < left,
      `10 s after exit: ${page.workers().length} Worker(s) running, node still registered: ${demo.nodes().some((n) => n.id === browserNode.id)}`,
    );
    await new Promise((r) => setTimeout(r, 100));
  }

  // The token is single-use: a reload gets no second key, and says so and what to do.
  await page.reload();
  const err = page.locator("#error");
  await err.waitFor({ state: "visible", timeout: 15_000 });
  assert.equal(await err.getAttribute("data-code"), "token_used");
  assert.match((await err.textContent()) ?? "", /already used.*newest URL.*restart/s);
  assert.equal(demo.nodes().filter((n) => n.ephemeral && n.id !== browserNode.id).length, 0, "the reload registered a node");
  await page.close();
  // The demo printed a fresh URL when the first token was used; its token mints one key.
  const fresh = await demo.takeURL();
  const freshToken = new URL(fresh).hash.replace("#token=", "");
  const minted = await fetch(new URL("/api/demo/session", fresh), { method: "POST", headers: { Authorization: `Bearer ${freshToken}` } });
  assert.equal(minted.status, 200, "the fresh URL's token mints a key");
  const again = await fetch(new URL("/api/demo/session", fresh), { method: "POST", headers: { Authorization: `Bearer ${freshToken}` } });
  assert.equal(again.status, 410, "a token mints one key only");

  // Within the grace period (5 s here) plus a sweep, the ephemeral node is gone.
  const deadline = Date.now() + 20_000;
  while (demo.nodes().some((n) => n.id === browserNode.id)) {
    assert.ok(Date.now() < deadline, "ephemeral browser node still registered 20 s after the tab closed");
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.deepEqual(pageErrors, []);
});

test("demo page without its token gets no key and says so", async (t) => {
  const demo = await startDemo();
  t.after(() => demo.stop());
  const origin = new URL(demo.url).origin;
  const res = await fetch(`${origin}/api/demo/session`, { method: "POST" });
  assert.equal(res.status, 401);
  const wrong = await fetch(`${origin}/api/demo/session`, { method: "POST", headers: { Authorization: "Bearer nope" } });
  assert.equal(wrong.status, 401);

  const browser = await launch();
  t.after(() => browser.close());
  const page = await browser.newPage();
  await page.goto(origin + "/");
  await page.locator("#status").filter({ hasText: /token/i }).waitFor({ timeout: 15_000 });
  const nodesBefore = demo.nodes().length;
  assert.equal(nodesBefore, 1, "only the demo agent is registered");
  assert.equal(await terminalText(page).then((s) => /[$#] *$/m.test(s)), false, "no shell without the token");
});
