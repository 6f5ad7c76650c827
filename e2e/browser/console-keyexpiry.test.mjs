// Node-key expiry on the console's Machines page, in Chromium against `tsconnect control`:
// an agent registered under the default lifetime reads "Key expires in 180 d"; with the
// network's lifetime set to 15 s (`tsconnect settings node-key-expiry 15s`) a new node reads
// "Key expires in 1 min", then, live and with no reload, "Key expired" once control's key
// timer passes it; the admin disables its expiry with the row's button ("Key expiry
// disabled", and `tsconnect nodes` says so too) and enables it again (expired at once: the
// key keeps the expiry it had). A member sees the state but no such button.
import { test } from "node:test";
import assert from "node:assert/strict";
import { consoleSuite, consoleLogin, machineRow, alice, bob } from "./console-harness.mjs";

const suite = consoleSuite({ tagged: ["alpha"] });
let short;

async function newPage(t) {
  return (await suite.page(t)).page;
}

/** The text of a row's key-expiry line once it matches re. */
async function keyText(page, name, re) {
  const line = machineRow(page, name).locator(".key-expiry, .key-expired");
  await line.filter({ hasText: re }).waitFor({ timeout: 30_000 });
  return (await line.textContent()).trim();
}

test("Machines shows each key's expiry, the expiry happening live, and the admin's disable/enable", async (t) => {
  const page = await newPage(t);
  await consoleLogin(page, suite.net.url, alice);
  suite.net.admin(["settings", "node-key-expiry", "15s"]);
  short = await suite.net.rawNode({ hostname: "shortlived", os: "linux" });
  assert.equal(await keyText(page, "alpha", /Key expires in/), "Key expires in 180 d");
  assert.equal(await keyText(page, short.name, /Key expires in/), "Key expires in 1 min");
  // No reload: control's key timer fires, the change is pushed, the row turns.
  assert.match(await keyText(page, short.name, /Key expired/), /^Key expired (just now|\d+ min ago)$/);
  assert.equal(
    await machineRow(page, short.name).locator(".key-expired").getAttribute("title"),
    "it must re-authenticate: tsconnect login",
  );

  await machineRow(page, short.name)
    .getByRole("button", { name: `Disable key expiry of ${short.name}` })
    .click();
  assert.equal(await keyText(page, short.name, /disabled/), "Key expiry disabled");
  const listed = suite.net.admin(["nodes"]);
  assert.match(
    listed.split("\n").find((l) => l.includes(short.name)),
    /expiry disabled/,
    listed,
  );

  await machineRow(page, short.name)
    .getByRole("button", { name: `Enable key expiry of ${short.name}` })
    .click();
  assert.match(await keyText(page, short.name, /Key expired/), /^Key expired/);
});

test("a member sees key expiry but has no button to change it", async (t) => {
  const page = await newPage(t);
  await consoleLogin(page, suite.net.url, bob);
  assert.equal(await keyText(page, "alpha", /Key expires in/), "Key expires in 180 d");
  assert.equal(await page.getByRole("button", { name: /key expiry of/ }).count(), 0);
});
