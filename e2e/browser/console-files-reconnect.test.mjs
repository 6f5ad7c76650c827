// A transfer across a reconnect (issue 19, part 3), in Chromium against `tsconnect control`
// and a real agent on this machine: mid-way through an upload and then a download the agent
// dies (SIGKILL, the connection with it) and comes back; the transfer's row says it was
// interrupted, Enter in the terminal reconnects in place, and the transfer continues from
// where it got to (the upload in its hidden file, the download with a ranged read into the
// same save stream); both files arrive byte for byte (sha256).
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { readFileSync, writeFileSync, rmSync, existsSync, readdirSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { consoleSuite, consoleLogin, openRootTerminal, alice } from "./console-harness.mjs";
import { dropFile, saveToOPFS, savedFile } from "./files-helpers.mjs";

const suite = consoleSuite({ tagged: ["alpha"] });
const sha = (/** @type {Buffer} */ b) => createHash("sha256").update(b).digest("hex");
const size = 48 << 20;

/**
 * Waits until the row of name has moved at least 4 MiB, restarts the agent (the session drops),
 * checks the row says it was interrupted and presses Enter in the terminal to reconnect.
 * @param {import("playwright-core").Page} term @param {string} name
 */
async function dropMidway(term, name) {
  const row = term.locator(`#transfers li[data-name="${name}"]`);
  await row.filter({ hasText: /^\S+([4-9]|[1-9][0-9])\.[0-9] MiB of 48\.0 MiB/ }).waitFor({ timeout: 60_000 });
  await suite.net.agents.alpha.restart();
  const interrupted = row.and(term.locator('[data-state="interrupted"]'));
  await interrupted.waitFor({ timeout: 60_000 }).catch(async (e) => {
    throw new Error(
      `${e.message}\nthe row: ${await row.getAttribute("data-state")} ${await row.textContent()}\nthe terminal: ${await term.locator(".xterm-rows").textContent()}`,
    );
  });
  const text = (await interrupted.textContent()) ?? "";
  assert.match(text, /Interrupted at [0-9.]+ MiB: .+\. It continues from there once the terminal reconnects \(press Enter in it\)\./);
  const at = Number(/Interrupted at ([0-9.]+) MiB/.exec(text)?.[1]);
  assert.ok(at > 0 && at < 48, `interrupted mid-way (${at} MiB)`);
  await term.locator(".xterm-rows").filter({ hasText: "Disconnected — press Enter to reconnect" }).waitFor({ timeout: 60_000 });
  await term.locator(".xterm-helper-textarea").focus();
  await term.keyboard.press("Enter");
  await row.and(term.locator('[data-state="done"]')).waitFor({ timeout: 120_000 });
  return at;
}

test("an upload and a download interrupted by a dropped connection continue after the reconnect", async (t) => {
  const { page, context } = await suite.page(t);
  await consoleLogin(page, suite.net.url, alice);
  const term = await openRootTerminal(page, context, "alpha");

  const tag = randomBytes(4).toString("hex");
  const upName = `tsconnect-resume-up-${tag}.bin`;
  t.after(() => rmSync(join(homedir(), upName), { force: true }));
  const upSum = await dropFile(term, upName, size);
  const upAt = await dropMidway(term, upName);
  assert.ok(existsSync(join(homedir(), upName)), "the upload arrived");
  assert.equal(sha(readFileSync(join(homedir(), upName))), upSum, "byte for byte after the reconnect");
  assert.deepEqual(
    readdirSync(homedir()).filter((n) => n.startsWith(`.${upName}.tsconnect-upload-`)),
    [],
    "its hidden file became the file",
  );

  const dlName = `tsconnect-resume-dl-${tag}.bin`;
  const dlData = randomBytes(size);
  writeFileSync(join(homedir(), dlName), dlData);
  t.after(() => rmSync(join(homedir(), dlName), { force: true }));
  await saveToOPFS(term);
  await term.locator("#files-button").click();
  await term.locator("#download-path").fill(dlName);
  await term.locator("#download-form button").click();
  const dlAt = await dropMidway(term, dlName);
  assert.deepEqual(await savedFile(term, dlName), { size: dlData.length, sum: sha(dlData) }, "saved byte for byte after the reconnect");
  t.diagnostic(`upload interrupted at ${upAt} MiB, download at ${dlAt} MiB; both continued and arrived whole`);
});
