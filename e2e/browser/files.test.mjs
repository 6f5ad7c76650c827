// File transfer on the demo page in Chromium: a file dropped on the terminal lands in the
// remote home byte for byte; one downloaded from the Files browser is written to disk (a
// File System Access handle, here on the origin-private file system) byte for byte; a
// canceled upload leaves nothing behind.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { readFileSync, writeFileSync, rmSync, existsSync, readdirSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { startDemo, launch, waitTerminal } from "./demo.js";
import { dropFile, saveToOPFS, savedFile } from "./files-helpers.mjs";

const sha = (b) => createHash("sha256").update(b).digest("hex");

/** A demo (`tsconnect demo`) and a Chromium page at its shell prompt, both ended after t; pageErrors collects the page's errors. */
async function demoSession(t) {
  const demo = await startDemo({ grace: "5s" });
  t.after(() => demo.stop());
  const browser = await launch();
  t.after(() => browser.close());
  const page = await browser.newPage();
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  await page.goto(demo.url);
  await waitTerminal(page, /[$#] *$/m);
  return { page, pageErrors };
}

test("drop a file on the terminal, download one from the file browser", async (t) => {
  const { page, pageErrors } = await demoSession(t);

  // Drop: a 3 MiB file built in the page (DataTransfer with a File, as a drag from the desktop).
  const tag = randomBytes(4).toString("hex");
  const dropName = `tsconnect-drop-${tag}.bin`;
  const dropPath = join(homedir(), dropName);
  t.after(() => rmSync(dropPath, { force: true }));
  const dropSum = await dropFile(page, dropName, 3 << 20);
  const row = page.locator(`#transfers li[data-name="${dropName}"]`);
  await row.and(page.locator('[data-state="done"]')).waitFor({ timeout: 60_000 });
  assert.ok(existsSync(dropPath), `${dropPath} arrived`);
  assert.equal(sha(readFileSync(dropPath)), dropSum, "the dropped file arrived byte for byte");
  assert.match((await row.textContent()) ?? "", /3\.0 MiB · [0-9.]+ MiB\/s · done$/);

  // Download: a file on the target, saved through a (stubbed) save picker onto OPFS.
  const dlName = `tsconnect-dl-${tag}.bin`;
  const dlPath = join(homedir(), dlName);
  const dlData = randomBytes(5 << 20);
  writeFileSync(dlPath, dlData);
  t.after(() => rmSync(dlPath, { force: true }));
  await saveToOPFS(page);
  await page.locator("#files-button").click();
  await page.locator(`#files li[data-name="${dlName}"] button`).click();
  await page.locator(`#transfers li[data-name="${dlName}"][data-state="done"]`).waitFor({ timeout: 60_000 });
  const got = await savedFile(page, dlName);
  assert.deepEqual(got, { size: dlData.length, sum: sha(dlData) }, "the downloaded file was saved byte for byte");

  // Cancel a large upload mid-way: neither the file nor its hidden part file stays.
  const cancelName = `tsconnect-cancel-${tag}.bin`;
  t.after(() => rmSync(join(homedir(), cancelName), { force: true }));
  await dropFile(page, cancelName, 256 << 20, false);
  const cancelRow = page.locator(`#transfers li[data-name="${cancelName}"]`);
  await cancelRow.filter({ hasText: /[1-9][0-9.]* MiB of/ }).waitFor({ timeout: 60_000 });
  await cancelRow.locator("button").click();
  await page.locator(`#transfers li[data-name="${cancelName}"][data-state="canceled"]`).waitFor({ timeout: 30_000 });
  assert.equal(existsSync(join(homedir(), cancelName)), false, "a canceled upload left no file");
  assert.deepEqual(
    readdirSync(homedir()).filter((n) => n.startsWith(`.${cancelName}.tsconnect-upload-`)),
    [],
    "no hidden upload part files left in the home directory",
  );
  assert.deepEqual(pageErrors, []);
});

test("download by a typed path: a file is saved; a missing file, one it may not read and a directory say why", async (t) => {
  const { page, pageErrors } = await demoSession(t);
  await saveToOPFS(page);
  await page.locator("#files-button").click();
  const field = page.locator("#download-path");
  await field.waitFor();

  /** Types path into the field, clicks Download and waits for the row named name to end; returns its state and text. */
  const downloadPath = async (path, name) => {
    await field.fill(path);
    await page.locator("#download-form button").click();
    const row = page.locator(`#transfers li[data-name="${name}"]:not([data-state="running"])`);
    await row.waitFor({ timeout: 60_000 });
    return { state: await row.getAttribute("data-state"), text: (await row.textContent()) ?? "" };
  };

  const tag = randomBytes(4).toString("hex");
  const name = `tsconnect-typed-${tag}.bin`;
  const data = randomBytes((2 << 20) + 123);
  writeFileSync(join(homedir(), name), data);
  t.after(() => rmSync(join(homedir(), name), { force: true }));
  // Relative to the home, as typed.
  const done = await downloadPath(name, name);
  assert.equal(done.state, "done", done.text);
  assert.match(done.text, /^tsconnect-typed-\w+\.bin2\.0 MiB · [0-9.]+ MiB\/s · done$/);
  assert.deepEqual(await savedFile(page, name), { size: data.length, sum: sha(data) }, "saved byte for byte");

  const missing = `no-such-file-${tag}`;
  assert.deepEqual(await downloadPath(`/tmp/${missing}`, missing), {
    state: "failed",
    text: `${missing}No such file: /tmp/${missing}Retry`,
  });
  // Root may not read a write-only sysctl file: the SFTP server refuses the open.
  assert.deepEqual(await downloadPath("/proc/sys/vm/compact_memory", "compact_memory"), {
    state: "failed",
    text: "compact_memoryPermission denied: /proc/sys/vm/compact_memoryRetry",
  });
  assert.deepEqual(await downloadPath("/tmp/", "tmp"), {
    state: "failed",
    text: "tmpThe path /tmp/ is a directory: only files can be downloadedRetry",
  });
  // None of the refused ones made a file to save into.
  const saved = await page.evaluate(async () => {
    const names = [];
    for await (const n of /** @type {any} */ (await navigator.storage.getDirectory()).keys()) names.push(n);
    return names;
  });
  assert.deepEqual(saved, [name]);
  assert.deepEqual(pageErrors, []);
});
