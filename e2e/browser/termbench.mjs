// Terminal speed in Chromium, with a reference beside every figure (issue 15's goals):
// - keystroke echo (keydown → the rows of .xterm-rows change), 200 keystrokes, p50/p99: the
//   demo page, a console child window and the reference web terminal (e2e/tools/webpty: the
//   same xterm.js over a WebSocket to a local PTY), in the same run, with the ratio p50/ref;
// - bulk: `cat` of 32 MiB of text until a marker shows, MiB/s, beside xterm.js alone writing
//   the same bytes in 64 KiB writes in the same browser, with the ratio; the longest
//   main-thread task in the page (and the console's parent) during it.
// Run after `make build`: node e2e/browser/termbench.mjs (scripts/bench.sh runs it).
import { mkdtempSync, rmSync, writeFileSync, copyFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startDemo, launch, waitTerminal } from "./demo.js";
import { startConsoleNet, consoleLogin, openSSHDialog, alice } from "./console-harness.mjs";
import { startWebPTY } from "./webpty.mjs";
import { install, measureEcho, quantile, timeToMarker, resetLongTasks, longestTask } from "./termprobe.mjs";

const MiB = 1 << 20;
const bulkMiB = Number(process.env.TERMBENCH_BULK_MIB || 32);
const keystrokes = Number(process.env.TERMBENCH_KEYS || 200);
const prompt = /[$#] *$/m;

/** Writes size bytes of base64 text in 76-column lines (what `base64` prints) to path. */
function writeBulk(path, size) {
  const line = 77;
  const lines = Math.floor(size / line);
  const raw = randomBytes(Math.ceil((lines * 76 * 3) / 4));
  const b64 = raw.toString("base64");
  const out = Buffer.alloc(lines * line);
  for (let i = 0; i < lines; i++) {
    out.write(b64.slice(i * 76, i * 76 + 76), i * line, "latin1");
    out[i * line + 76] = 10;
  }
  writeFileSync(path, out);
  return out.length;
}

const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : "n/a");
const results = [];
function report(line) {
  console.log(line);
  results.push(line);
}

/** Echo figures of one terminal. */
async function echo(label, page) {
  await page.bringToFront();
  const { times, missed } = await measureEcho(page, keystrokes);
  const r = { p50: quantile(times, 0.5), p99: quantile(times, 0.99), n: times.length, missed };
  report(`echo ${label}: p50 ${f1(r.p50)} ms, p99 ${f1(r.p99)} ms (${r.n} keystrokes${missed ? `, ${missed} drew nothing in 2 s` : ""})`);
  return r;
}

/** Bulk figure of one terminal: cat of the file until its marker, with the longest tasks on pages. */
async function bulk(label, page, file, bytes, watch = [page]) {
  await page.bringToFront();
  for (const p of watch) await resetLongTasks(p);
  const ms = await timeToMarker(page, `cat ${file}; echo TB''DONE`, "TBDONE");
  const rate = bytes / MiB / (ms / 1000);
  const tasks = [];
  for (const p of watch) tasks.push(f1(await longestTask(p)));
  report(
    `bulk ${label}: ${f1(rate)} MiB/s (${(bytes / MiB).toFixed(0)} MiB in ${f1(ms)} ms); longest main-thread task ${tasks.join(" / ")} ms`,
  );
  await waitTerminal(page, prompt);
  await page.keyboard.type("clear\n");
  await waitTerminal(page, /^[^\n]*[$#] *(\n *)*$/);
  return rate;
}

const dir = mkdtempSync(join(tmpdir(), "tsconnect-termbench-"));
const file = join(dir, "bulk.txt");
const bytes = writeBulk(file, bulkMiB * MiB);
const ref = await startWebPTY();
copyFileSync(file, join(ref.assets, "bulk.txt"));
const demo = await startDemo({ grace: "5s" });
const net = await startConsoleNet({ tagged: ["alpha"] });
const browser = await launch();
try {
  const context = await browser.newContext({ viewport: { width: 960, height: 600 } });
  await install(context);

  // The reference terminal and xterm.js alone.
  const refPage = await context.newPage();
  await refPage.goto(ref.url);
  await waitTerminal(refPage, prompt);
  const local = await context.newPage();
  await local.goto(ref.localURL);
  await local.bringToFront();
  await local.waitForFunction(() => /** @type {any} */ (window).webpty);
  const alone = await local.evaluate(() => /** @type {any} */ (window).webpty.writeLocal("bulk.txt", 65536));
  const aloneRate = alone.bytes / MiB / (alone.ms / 1000);
  await local.close();

  // The demo page.
  const demoPage = await context.newPage();
  await demoPage.goto(demo.url);
  await waitTerminal(demoPage, prompt);

  // A console child window.
  const con = await context.newPage();
  await consoleLogin(con, net.url, alice);
  await con.locator('tr[data-machine="alpha"] .online').waitFor();
  const dlg = await openSSHDialog(con, "alpha");
  await dlg.locator('input[name=user][value="root"]').check();
  const [child] = await Promise.all([context.waitForEvent("page"), dlg.getByRole("button", { name: "Connect" }).click()]);
  await waitTerminal(child, prompt, 30_000);

  console.log(`\n--- keystroke echo, keydown → rows change, ${keystrokes} keystrokes (goal: p50 ≤ 1.2× reference, p99 ≤ 20 ms)`);
  const eRef = await echo("reference (webpty)", refPage);
  const eDemo = await echo("demo page", demoPage);
  const eChild = await echo("console child window", child);
  report(`echo p50 ratio to reference: demo ${(eDemo.p50 / eRef.p50).toFixed(2)}×, console child ${(eChild.p50 / eRef.p50).toFixed(2)}×`);

  console.log(`\n--- bulk output, cat of ${bulkMiB} MiB of base64 text until a marker shows (goal ≥ 30 MiB/s; tasks ≤ 50 ms)`);
  report(`bulk xterm.js alone (64 KiB writes): ${f1(aloneRate)} MiB/s`);
  const bRef = await bulk("reference (webpty)", refPage, file, bytes);
  const bDemo = await bulk("demo page", demoPage, file, bytes);
  const bChild = await bulk("console child window (tasks: parent / child)", child, file, bytes, [con, child]);
  report(
    `bulk ratio to xterm.js alone: demo ${(bDemo / aloneRate).toFixed(2)}, console child ${(bChild / aloneRate).toFixed(2)}, reference ${(bRef / aloneRate).toFixed(2)}`,
  );
  await context.close();
} finally {
  await browser.close();
  await net.stop();
  await demo.stop();
  await ref.stop();
  rmSync(dir, { recursive: true, force: true });
}
