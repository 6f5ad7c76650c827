// Links to a session (issue 19, part 1), in Chromium against `tsconnect control` with a real
// agent: /ssh/USER@HOST opens the sign-in form when signed out and then the session in that
// tab (a shell that evaluates what is typed); ?cmd= shows the command and runs nothing until
// Run is clicked, then runs it in the terminal instead of the login shell; a link to a user or
// machine the person may not use says why; "Copy link" in the SSH… dialog gives the link.
import { test } from "node:test";
import assert from "node:assert/strict";
import { consoleSuite, consoleLogin, openSSHDialog, alice, bob } from "./console-harness.mjs";

const suite = consoleSuite({ tagged: ["alpha"] });

/** Fills the console's sign-in form that a link landed on. */
async function signIn(page, user) {
  await page.locator(".link-note").waitFor();
  await page.locator("#login-email").fill(user.email);
  await page.locator("#login-password").fill(user.password);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.locator('body[data-page="ssh"]').waitFor();
}

/** Waits until the link page's terminal shows text matching re. */
async function termShows(page, re) {
  await page.locator(".ssh-link .xterm-rows").filter({ hasText: re }).waitFor({ timeout: 60_000 });
}

test("a link opens the sign-in form, then the session in the same tab", async (t) => {
  const { page } = await suite.page(t);
  await page.goto(`${suite.net.url}/ssh/root@alpha`);
  assert.equal(new URL(page.url()).hash, "#/ssh/root@alpha");
  await signIn(page, alice);
  assert.equal(await page.locator("#link-h").textContent(), "SSH to root@alpha");
  await page.locator(".ssh-link .term-status").filter({ hasText: "Connected: root@alpha" }).waitFor({ timeout: 60_000 });
  await page.locator(".ssh-link .xterm-helper-textarea").focus();
  await page.keyboard.type("echo linked-$((40+2)) $SSH_CONNECTION\n");
  // The shell evaluated it (the typed line has no "42"), on a connection from the overlay.
  await termShows(page, /linked-42 100\.\d+\.\d+\.\d+ \d+ 100\./);
  assert.equal(await page.locator("#sessions li .who").textContent(), "root@alpha");
});

test("a link's command shows, runs only after Run, and runs instead of the login shell", async (t) => {
  const { page } = await suite.page(t);
  const cmd = "echo cmd-$((6*7)) in $0; sleep 60";
  await page.goto(`${suite.net.url}/ssh/root@alpha?cmd=${encodeURIComponent(cmd)}`);
  await signIn(page, alice);
  const shown = page.locator(".ssh-link pre.link-cmd");
  await shown.waitFor();
  assert.equal(await shown.textContent(), cmd);
  assert.match(await page.locator(".ssh-link .link-status").textContent(), /Nothing runs until you click Run/);
  // Nothing started: no session listed, no terminal.
  assert.equal(await page.locator("#sessions li").count(), 0);
  assert.equal(await page.locator(".ssh-link .xterm").count(), 0);
  await page.getByRole("button", { name: "Run" }).click();
  // The command ran, evaluated, by "SHELL -c" ($0 has no "-" of a login shell).
  await termShows(page, /cmd-42 in (sh|bash|dash|zsh)\b/);
  assert.equal(await page.locator("#sessions li .who").textContent(), "root@alpha");
});

test("a link to a user, a machine or a network the person may not use says why", async (t) => {
  const { page } = await suite.page(t);
  await page.goto(`${suite.net.url}/ssh/root@alpha`);
  await signIn(page, bob);
  const err = page.locator(".ssh-link .error");
  await err.filter({ hasText: /./ }).waitFor();
  assert.match(await err.textContent(), /^The policy does not let you log in to alpha as root\./);
  assert.equal(await page.locator(".ssh-link .xterm").count(), 0);

  const { page: p2 } = await suite.page(t);
  await p2.goto(`${suite.net.url}/ssh/nobody@alpha`);
  await signIn(p2, alice);
  const err2 = p2.locator(".ssh-link .error");
  await err2.filter({ hasText: /./ }).waitFor();
  assert.equal(await err2.textContent(), "The policy does not let you log in to alpha as nobody. You may log in to it as daemon, root.");

  await p2.goto(`${suite.net.url}/ssh/root@nosuch`);
  await err2.filter({ hasText: /nosuch/ }).waitFor();
  assert.equal(await err2.textContent(), "There is no machine “nosuch” that you can see in this network.");

  const r = await p2.goto(`${suite.net.url}/ssh/-oProxyCommand=x@alpha`);
  assert.equal(r.status(), 400);
  assert.match(await p2.locator("main").textContent(), /is not a user name/);
});

test('"Copy link" in the SSH… dialog gives the link of the picked user', async (t) => {
  const { page } = await suite.page(t);
  await consoleLogin(page, suite.net.url, alice);
  const dlg = await openSSHDialog(page, "alpha");
  await dlg.locator('input[name=user][value="daemon"]').check();
  await dlg.getByRole("button", { name: "Copy link" }).click();
  const box = dlg.getByRole("textbox", { name: "Link to this session" });
  await box.waitFor();
  assert.equal(await box.inputValue(), `${suite.net.url}/ssh/daemon@alpha`);
  await dlg.locator(".link-said").filter({ hasText: /./ }).waitFor();
});
