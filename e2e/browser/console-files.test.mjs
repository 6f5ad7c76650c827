// File transfer in the console's child window (issue 19, part 3), in Chromium against
// `tsconnect control` and a real agent on this machine: a file dropped on the terminal arrives
// in root's home byte for byte, and one downloaded from the window's Files browser is saved
// (through a stubbed save picker onto the origin-private file system) byte for byte.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { readFileSync, writeFileSync, rmSync, existsSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { consoleSuite, consoleLogin, openRootTerminal, alice } from "./console-harness.mjs";
import { dropFile, saveToOPFS, savedFile } from "./files-helpers.mjs";

const suite = consoleSuite({ tagged: ["alpha"] });
const sha = (/** @type {Buffer} */ b) => createHash("sha256").update(b).digest("hex");

test("the child window's terminal takes a dropped file and downloads one", async (t) => {
  const { page, context } = await suite.page(t);
  await consoleLogin(page, suite.net.url, alice);
  const term = await openRootTerminal(page, context, "alpha");

  const tag = randomBytes(4).toString("hex");
  const dropName = `tsconnect-console-drop-${tag}.bin`;
  t.after(() => rmSync(join(homedir(), dropName), { force: true }));
  const dropSum = await dropFile(term, dropName, 2 << 20);
  await term.locator(`#transfers li[data-name="${dropName}"][data-state="done"]`).waitFor({ timeout: 60_000 });
  assert.ok(existsSync(join(homedir(), dropName)), "the dropped file arrived");
  assert.equal(sha(readFileSync(join(homedir(), dropName))), dropSum, "byte for byte");

  const dlName = `tsconnect-console-dl-${tag}.bin`;
  const dlData = randomBytes(3 << 20);
  writeFileSync(join(homedir(), dlName), dlData);
  t.after(() => rmSync(join(homedir(), dlName), { force: true }));
  await saveToOPFS(term);
  await term.locator("#files-button").click();
  await term.locator(`#files li[data-name="${dlName}"] button`).click();
  await term.locator(`#transfers li[data-name="${dlName}"][data-state="done"]`).waitFor({ timeout: 60_000 });
  const got = await savedFile(term, dlName);
  assert.deepEqual(got, { size: dlData.length, sum: sha(dlData) }, "the download was saved byte for byte");
});
