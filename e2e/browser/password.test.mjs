// Passwords in the console, in Chromium against `tsconnect control`: bob changes his own
// password from the header (a wrong current one is refused in the dialog); the session a
// thief had ends, his own goes on; alice (admin) resets bob's password from the Users page
// and bob's session ends.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launch } from "./demo.js";
import { startConsoleNet, consoleLogin, apiLogin, alice, bob } from "./console-harness.mjs";

let net;
let browser;

before(async () => {
  net = await startConsoleNet({ tagged: [] });
  browser = await launch();
});
after(async () => {
  await browser?.close();
  if (process.exitCode) console.error(net?.controlLog());
  await net?.stop();
});

async function meStatus(cookie) {
  return (await fetch(`${net.url}/api/v1/me`, { headers: { Cookie: cookie } })).status;
}

async function dialogSet(page, fields) {
  const dlg = page.locator("dialog[open]");
  for (const [label, value] of Object.entries(fields)) await dlg.getByLabel(label).fill(value);
  await dlg.getByRole("button", { name: "Set password" }).click();
  return dlg;
}

test("a password change from the header ends the other sessions; an admin reset ends the user's", async (t) => {
  const context = await browser.newContext();
  t.after(() => context.close());
  const page = await context.newPage();
  const thief = await apiLogin(net.url, bob);
  await consoleLogin(page, net.url, bob);

  await page.getByRole("button", { name: "Password…" }).click();
  let dlg = await dialogSet(page, { "Current password": "not my password", "New password": "a brand new password" });
  await dlg.getByRole("alert").filter({ hasText: "current password is wrong" }).waitFor();
  assert.equal(await meStatus(thief.cookie), 200, "a refused change ends nothing");
  await dlg.getByLabel("Current password").fill(bob.password);
  await dlg.getByRole("button", { name: "Set password" }).click();
  await dlg.waitFor({ state: "detached" });
  assert.equal(await meStatus(thief.cookie), 401, "the thief's session ended");
  // bob's own session goes on: a state change with the new CSRF token works.
  await page.reload();
  await page.locator('body[data-page="machines"]').waitFor();
  const bobNow = { ...bob, password: "a brand new password" };
  await apiLogin(net.url, bobNow);

  const admin = await browser.newContext();
  t.after(() => admin.close());
  const apage = await admin.newPage();
  await consoleLogin(apage, net.url, alice);
  await apage.goto(`${net.url}/admin/#/users`);
  await apage.getByRole("button", { name: `Reset the password of ${bob.email}` }).click();
  dlg = await dialogSet(apage, { "New password": "set by the admin" });
  await dlg.waitFor({ state: "detached" });
  await apage.getByRole("status").filter({ hasText: "signed out of the console everywhere" }).waitFor();
  await page.reload();
  await page.locator("#login-email").waitFor();
  await apiLogin(net.url, { ...bob, password: "set by the admin" });
});
