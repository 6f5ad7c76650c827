// The Sessions page (issue 19, part 6), in Chromium against `tsconnect control` and a real
// agent: a live SSH login from the console shows there (machine, login, who it is from, when,
// bytes, the path of the agent's traffic to it: issue 21 part 4) as the agent reports it; a
// member without it sees none and no End button; the admin ends it and the agent cuts it at
// once, the terminal saying who ended it. The Machines page's "Paths…" shows an agent's paths
// to the peers it exchanged traffic with.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { consoleSuite, consoleLogin, openRootTerminal, alice, bob, bin } from "./console-harness.mjs";
import { waitTerminal } from "./demo.js";

const suite = consoleSuite({ tagged: ["alpha"] });

test("a live login is listed with who and how much; a member sees none; the admin's End cuts it and says who", async (t) => {
  const { context, page } = await suite.page(t);
  await consoleLogin(page, suite.net.url, alice);
  const term = await openRootTerminal(page, context, "alpha");
  await term.locator(".xterm-helper-textarea").focus();
  await term.keyboard.type("echo listed\n");
  await waitTerminal(term, /^listed\s*$/m);

  await page.locator('nav a[href="#/sessions"]').click();
  const row = page.locator(".live-sessions tbody tr");
  await row.first().waitFor({ timeout: 20_000 });
  assert.equal(await row.count(), 1);
  assert.equal(await row.locator(".machine").textContent(), "alpha");
  assert.equal(await row.locator(".login").textContent(), "root");
  assert.match(await row.locator(".from").textContent(), /^alice@example\.com on console\S* \(100\.\d+\.\d+\.\d+:\d+\)$/);
  assert.match(await row.locator(".started").textContent(), /just now/);
  assert.match(await row.locator(".traffic").textContent(), /^\d+(\.\d)? (B|KiB) in, \d+(\.\d)? (B|KiB) out$/);
  // The browser has no direct paths: the agent's traffic to it goes through the relay, and
  // no disco round trip is measured for it.
  assert.equal(await row.locator(".path").textContent(), "relay DERP(tsc)");

  // bob (a member, no login of his own) sees none, and no End.
  const { page: bobPage } = await suite.page(t);
  await consoleLogin(bobPage, suite.net.url, bob);
  await bobPage.locator('nav a[href="#/sessions"]').click();
  await bobPage.locator(".live-sessions .empty:not([hidden])").waitFor();
  assert.equal(await bobPage.locator(".live-sessions tbody tr").count(), 0);
  assert.equal(await bobPage.getByRole("button", { name: /^End / }).count(), 0);

  await row.getByRole("button", { name: /^End root@alpha from alice@example\.com/ }).click();
  await page.locator("dialog[open]").getByRole("button", { name: "End session" }).click();
  await waitTerminal(term, /Session ended by alice@example\.com\./, 10_000);
  // Ended by the server, not lost: the session is over, with no offer to reconnect.
  await page.locator("#sessions li .state-failed").filter({ hasText: "session_killed" }).waitFor({ timeout: 10_000 });
  await page.locator(".live-sessions .empty:not([hidden])").waitFor({ timeout: 10_000 });
});

test("a login between two agents with direct paths shows the direct endpoint and its round trip", async (t) => {
  // Both agents send WireGuard over a loopback UDP socket when the other answers there.
  const udp = ["--udp-port", "0", "--udp-addr", "127.0.0.1"];
  const client = await suite.net.agent("gamma", { tags: "", ssh: false, args: udp });
  await suite.net.agent("delta", { args: udp });
  // A login kept open by a command long enough for the page (the agent's teardown waits for it).
  const ssh = suite.net.track(spawn(bin, ["--socket", client.socket, "ssh", "root@delta", "sleep 20"], { stdio: "ignore" }));
  t.after(() => ssh.kill());

  const { page } = await suite.page(t);
  await consoleLogin(page, suite.net.url, alice);
  await page.locator('nav a[href="#/sessions"]').click();
  const row = page.locator(".live-sessions tbody tr").filter({ has: page.locator(".machine", { hasText: /^delta$/ }) });
  await row.waitFor({ timeout: 20_000 });
  assert.match(await row.locator(".from").textContent(), /^alice@example\.com on gamma \(100\.\d+\.\d+\.\d+:\d+\)$/);
  // Relayed at first, then direct once a disco pong came: the agent re-reports at once.
  await row.locator(".path", { hasText: /^direct 127\.0\.0\.1:\d+ \d+(\.\d)?ms$/ }).waitFor({ timeout: 20_000 });

  // The Machines page shows delta's path to each peer it exchanged traffic with: gamma, direct.
  await page.locator('nav a[href="#/machines"]').click();
  await page.getByRole("button", { name: "Paths of delta" }).click();
  const dlg = page.locator("dialog[open]");
  const peer = dlg.locator(".peer-paths tbody tr").filter({ has: page.locator(".peer", { hasText: /^gamma \(100\.\d+\.\d+\.\d+\)$/ }) });
  await peer.locator(".path", { hasText: /^direct 127\.0\.0\.1:\d+ \d+(\.\d)?ms$/ }).waitFor({ timeout: 20_000 });
  await dlg.getByRole("button", { name: "Close" }).click();
  await dlg.waitFor({ state: "detached" });
  // gamma serves no SSH; it reports its paths all the same: delta, direct.
  await page.getByRole("button", { name: "Paths of gamma" }).click();
  const back = dlg.locator(".peer-paths tbody tr").filter({ has: page.locator(".peer", { hasText: /^delta \(100\.\d+\.\d+\.\d+\)$/ }) });
  await back.locator(".path", { hasText: /^direct 127\.0\.0\.1:\d+ \d+(\.\d)?ms$/ }).waitFor({ timeout: 20_000 });
  await dlg.getByRole("button", { name: "Close" }).click();
});
