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

const sha = (b) => createHash("sha256").update(b).digest("hex");

test("drop a file on the terminal, download one from the file browser", async (t) => {
  const demo = await startDemo({ grace: "5s" });
  t.after(() => demo.stop());
  const browser = await launch();
  t.after(() => browser.close());
  const page = await browser.newPage();
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  await page.goto(demo.url);
  await waitTerminal(page, /[$#] *$/m);

  // Drop: a 3 MiB file built in the page (DataTransfer with a File, as a drag from the desktop).
  const tag = randomBytes(4).toString("hex");
  const dropName = `tsconnect-drop-${tag}.bin`;
  const dropPath = join(homedir(), dropName);
  t.after(() => rmSync(dropPath, { force: true }));
  const dropSum = await page.evaluate(async (name) => {
    const data = new Uint8Array(3 << 20);
    for (let i = 0; i < data.length; i += 65536) crypto.getRandomValues(data.subarray(i, i + 65536));
    const dt = new DataTransfer();
    dt.items.add(new File([data], name));
    const el = /** @type {HTMLElement} */ (document.getElementById("terminal"));
    el.dispatchEvent(new DragEvent("dragover", { dataTransfer: dt, bubbles: true, cancelable: true }));
    el.dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
    const h = new Uint8Array(await crypto.subtle.digest("SHA-256", data));
    return [...h].map((b) => b.toString(16).padStart(2, "0")).join("");
  }, dropName);
  const row = page.locator(`#transfers li[data-name="${dropName}"]`);
  await row.and(page.locator('[data-state="done"]')).waitFor({ timeout: 60_000 });
  assert.ok(existsSync(dropPath), `${dropPath} arrived`);
  assert.equal(sha(readFileSync(dropPath)), dropSum, "the dropped file arrived byte for byte");
  assert.match((await row.textContent()) ?? "", /MiB of 3\.0 MiB/);

  // Download: a file on the target, saved through a (stubbed) save picker onto OPFS.
  const dlName = `tsconnect-dl-${tag}.bin`;
  const dlPath = join(homedir(), dlName);
  const dlData = randomBytes(5 << 20);
  writeFileSync(dlPath, dlData);
  t.after(() => rmSync(dlPath, { force: true }));
  await page.evaluate(() => {
    /** @type {any} */ (window).showSaveFilePicker = async (/** @type {{ suggestedName: string }} */ { suggestedName }) =>
      (await navigator.storage.getDirectory()).getFileHandle(suggestedName, { create: true });
  });
  await page.locator("#files-button").click();
  await page.locator(`#files li[data-name="${dlName}"] button`).click();
  await page.locator(`#transfers li[data-name="${dlName}"][data-state="done"]`).waitFor({ timeout: 60_000 });
  const got = await page.evaluate(async (name) => {
    const f = await (await (await navigator.storage.getDirectory()).getFileHandle(name)).getFile();
    const h = new Uint8Array(await crypto.subtle.digest("SHA-256", await f.arrayBuffer()));
    return { size: f.size, sum: [...h].map((b) => b.toString(16).padStart(2, "0")).join("") };
  }, dlName);
  assert.deepEqual(got, { size: dlData.length, sum: sha(dlData) }, "the downloaded file was saved byte for byte");

  // Cancel a large upload mid-way: neither the file nor its hidden part file stays.
  const cancelName = `tsconnect-cancel-${tag}.bin`;
  t.after(() => rmSync(join(homedir(), cancelName), { force: true }));
  await page.evaluate((name) => {
    const dt = new DataTransfer();
    dt.items.add(new File([new Uint8Array(256 << 20)], name));
    /** @type {HTMLElement} */ (document.getElementById("terminal")).dispatchEvent(
      new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }),
    );
  }, cancelName);
  const cancelRow = page.locator(`#transfers li[data-name="${cancelName}"]`);
  await cancelRow.filter({ hasText: /[1-9][0-9.]* MiB of/ }).waitFor({ timeout: 60_000 });
  await cancelRow.locator("button").click();
  await page.locator(`#transfers li[data-name="${cancelName}"][data-state="canceled"]`).waitFor({ timeout: 30_000 });
  assert.equal(existsSync(join(homedir(), cancelName)), false, "a canceled upload left no file");
  assert.deepEqual(
    readdirSync(homedir()).filter((n) => n.includes(".tsconnect-upload-")),
    [],
    "no hidden upload part files left in the home directory",
  );
  assert.deepEqual(pageErrors, []);
});
