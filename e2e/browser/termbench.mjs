// Terminal speed in Chromium, with a reference beside every figure (issue 15's goals):
// - keystroke echo (keydown → the rows of .xterm-rows change), 200 keystrokes, p50/p99: the
//   demo page, a console child window and the reference web terminal (e2e/tools/webpty: the
//   same xterm.js over a WebSocket to a local PTY), in the same run, with the ratio p50/ref;
// - bulk: `cat` of 32 MiB of text until a marker shows, MiB/s, beside xterm.js alone writing
//   the same bytes in 64 KiB writes in the same browser, with the ratio; the longest
//   main-thread task in the page (and the console's parent) during it;
// - responsiveness under output (e2e/tools/termload floods the screen and shows each key it
//   reads): key round trips, Ctrl-C until the output stops on screen, a real cat + SIGINT;
// - memory through the DevTools protocol (page + Worker heaps + wasm memory) after 100 MiB of
//   output, and after the session ends;
// - the hidden parent: headful Chromium under Xvfb, the console tab in the background (its
//   visibilityState asserted 'hidden') and its child terminal window in front: echo there;
// - the lossy path: the relay dropping 1% of packets (e2e/tools/lossyrelay): echo and bulk.
// Run after `make build`: node e2e/browser/termbench.mjs (scripts/bench.sh runs it);
// TERMBENCH_PARTS=headless,hidden,lossy picks parts (headless is echo,bulk,load,memory, each
// also a part of its own), TERMBENCH_KEYS and TERMBENCH_BULK_MIB change the keystroke count
// (200) and the bulk size (32 MiB); TERMBENCH_PROBES=render,mutation runs the headless parts
// once per probe, in that order (termprobe.mjs: "render" is the default, "mutation" the older
// MutationObserver on every row), to show what the probe itself costs; TERMBENCH_RENDERERS
// (default dom,webgl) runs them once per terminal renderer (?renderer= of the pages: "dom" is
// xterm.js's DOM renderer; "webgl" is @xterm/addon-webgl even in software, as this Chromium has
// no GPU; "auto", what users get, picks DOM here). Each run says which renderer drew.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync, copyFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startDemo, launch, launchHeadful, startXvfb, waitTerminal } from "./demo.js";
import { startConsoleNet, consoleLogin, openSSHDialog, alice } from "./console-harness.mjs";
import { startWebPTY } from "./webpty.mjs";
import { goTool } from "./console-harness.mjs";
import {
  install,
  measureEcho,
  quantile,
  timeToMarker,
  resetLongTasks,
  longestTask,
  keyToMarker,
  keyToQuiet,
  memory,
  drawnBy,
} from "./termprobe.mjs";

const MiB = 1 << 20;
const bulkMiB = Number(process.env.TERMBENCH_BULK_MIB || 32);
const keystrokes = Number(process.env.TERMBENCH_KEYS || 200);
const prompt = /[$#] *$/m;
// Which parts run (all by default): headless (echo, bulk, under output, memory), hidden, lossy.
const parts = (process.env.TERMBENCH_PARTS || "headless,hidden,lossy")
  .split(",")
  .flatMap((p) => (p === "headless" ? ["echo", "bulk", "load", "memory"] : [p]));
const probes = (process.env.TERMBENCH_PROBES || "render").split(",");
const renderers = (process.env.TERMBENCH_RENDERERS || "dom,webgl").split(",");

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

/**
 * Logs alice into the console at url in a new page of context and opens an SSH session to
 * alpha as root; resolves with the console page and the child window at its prompt.
 */
async function openConsoleChild(context, url, timeout = 30_000, renderer = "auto") {
  const con = await context.newPage();
  await consoleLogin(con, url, alice, `?renderer=${renderer}`);
  await con.locator('tr[data-machine="alpha"] .online').waitFor();
  const dlg = await openSSHDialog(con, "alpha");
  await dlg.locator('input[name=user][value="root"]').check();
  const [child] = await Promise.all([context.waitForEvent("page"), dlg.getByRole("button", { name: "Connect" }).click()]);
  await waitTerminal(child, prompt, timeout);
  return { con, child };
}

/** Echo figures of one terminal. */
async function echo(label, page, front = true) {
  if (front) await page.bringToFront();
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

/**
 * Responsiveness under output: termload streams the file (4 times over) in a scroll region
 * and shows each key it reads on the last row; 10 keys' round trips are timed while it floods
 * the screen, then Ctrl-C (a byte to termload, which stops) until its end line is drawn; then
 * a real `cat` interrupted by SIGINT (Ctrl-C) until the screen is quiet. Longest tasks on watch.
 */
async function underLoad(label, page, termload, file, watch = [page]) {
  await page.bringToFront();
  for (const p of watch) await resetLongTasks(p);
  await page.locator(".xterm-helper-textarea").focus();
  await page.keyboard.type(`${termload} ${file} 4\n`);
  await page.waitForTimeout(700);
  const lat = [];
  let missed = 0;
  for (let i = 1; i <= 10; i++) {
    const ms = await keyToMarker(page, "a", `KEY ${i} 61`, 5000);
    if (ms === null) {
      missed++;
      break;
    } else lat.push(ms);
    await page.waitForTimeout(100);
  }
  const stop = await keyToMarker(page, "Control+C", "TERMLOAD DONE", 60_000);
  const tasks = [];
  for (const p of watch) tasks.push(f1(await longestTask(p)));
  await waitTerminal(page, prompt, 60_000);
  await page.keyboard.type("clear\n");
  await waitTerminal(page, /^[^\n]*[$#] *(\n *)*$/);
  // A real program interrupted by SIGINT: cat of the file (4 times) and Ctrl-C after 0.7 s.
  await page.keyboard.type(`cat ${file} ${file} ${file} ${file}\n`);
  await page.waitForTimeout(700);
  const sigint = await keyToQuiet(page, "Control+C", 1000, 60_000);
  await waitTerminal(page, prompt, 60_000);
  await page.keyboard.type("clear\n");
  await waitTerminal(page, /^[^\n]*[$#] *(\n *)*$/);
  report(
    `under output ${label}: key echo max ${f1(Math.max(...lat))} ms, p50 ${f1(quantile(lat, 0.5))} ms (${lat.length} keys${missed ? ", then one not drawn in 5 s" : ""}); ` +
      `Ctrl-C → stream's end drawn ${stop === null ? "never (60 s)" : f1(stop) + " ms"}; cat + SIGINT → screen quiet after ${sigint === null ? "never (60 s)" : f1(sigint) + " ms"}; ` +
      `longest main-thread task ${tasks.join(" / ")} ms`,
  );
}

const MB = (b) => (b / MiB).toFixed(1);
const memLine = (m) => `${MB(m.total)} MiB (page ${MB(m.page)}, ${m.workers} Worker(s) ${MB(m.workerHeap)}, wasm memory ${MB(m.wasm)})`;

const dir = mkdtempSync(join(tmpdir(), "tsconnect-termbench-"));
const file = join(dir, "bulk.txt");
const bytes = writeBulk(file, bulkMiB * MiB);
/** @type {any} */ let ref;
/** @type {any} */ let demo;
/** @type {any} */ let net;
/** @type {string} */ let termload = "";
/** url with ?renderer=renderer (before any fragment). */
function withRenderer(url, renderer) {
  const u = new URL(url);
  u.searchParams.set("renderer", renderer);
  return u.href;
}

/** Everything in headless Chromium, seen by probe (termprobe.mjs), drawn by renderer. */
async function headless(probe, renderer) {
  const browser = await launch();
  try {
    const context = await browser.newContext({ viewport: { width: 960, height: 600 } });
    await install(context, probe);

    // The reference terminal and xterm.js alone.
    const refPage = await context.newPage();
    await refPage.goto(withRenderer(ref.url, renderer));
    await waitTerminal(refPage, prompt);
    const local = await context.newPage();
    await local.goto(withRenderer(ref.localURL, renderer));
    await local.bringToFront();
    await local.waitForFunction(() => /** @type {any} */ (window).webpty);
    const alone = await local.evaluate(() => /** @type {any} */ (window).webpty.writeLocal("bulk.txt", 65536));
    const aloneRate = alone.bytes / MiB / (alone.ms / 1000);
    // The floor of echo: xterm.js alone writing a character from the keydown handler itself
    // (DOM only: with software WebGL the page drew the first character and then nothing).
    let floor = null;
    if (parts.includes("echo") && renderer === "dom") {
      await local.evaluate(() => document.addEventListener("keydown", () => /** @type {any} */ (window).webpty.term.write("x"), true));
      const { times } = await measureEcho(local, Math.min(keystrokes, 100));
      floor = { p50: quantile(times, 0.5), p99: quantile(times, 0.99) };
    }
    await local.close();

    // The demo page.
    const demoPage = await context.newPage();
    await demoPage.goto(withRenderer(await demo.takeURL(), renderer));
    await waitTerminal(demoPage, prompt);

    // A console child window.
    const { con, child } = await openConsoleChild(context, net.url, 30_000, renderer);
    const drawn = [];
    for (const p of [refPage, demoPage, child]) drawn.push(await drawnBy(p));
    console.log(
      `\n=== headless Chromium, ${probe} probe, renderer=${renderer} (drawn by: reference ${drawn[0]}, demo ${drawn[1]}, console child ${drawn[2]})`,
    );

    if (parts.includes("echo")) {
      console.log(`\n--- keystroke echo, keydown → rows change, ${keystrokes} keystrokes (goal: p50 ≤ 1.2× reference, p99 ≤ 20 ms)`);
      if (floor)
        report(
          `echo xterm.js alone, written from the keydown handler (no network; the floor): p50 ${f1(floor.p50)} ms, p99 ${f1(floor.p99)} ms`,
        );
      const eRef = await echo("reference (webpty)", refPage);
      const eDemo = await echo("demo page", demoPage);
      const eChild = await echo("console child window", child);
      report(
        `echo p50 ratio to reference: demo ${(eDemo.p50 / eRef.p50).toFixed(2)}×, console child ${(eChild.p50 / eRef.p50).toFixed(2)}×`,
      );
    }

    if (parts.includes("bulk")) {
      console.log(`\n--- bulk output, cat of ${bulkMiB} MiB of base64 text until a marker shows (goal ≥ 30 MiB/s; tasks ≤ 50 ms)`);
      report(`bulk xterm.js alone (64 KiB writes): ${f1(aloneRate)} MiB/s`);
      const bRef = await bulk("reference (webpty)", refPage, file, bytes);
      const bDemo = await bulk("demo page", demoPage, file, bytes);
      const bChild = await bulk("console child window (tasks: parent / child)", child, file, bytes, [con, child]);
      report(
        `bulk ratio to xterm.js alone: demo ${(bDemo / aloneRate).toFixed(2)}, console child ${(bChild / aloneRate).toFixed(2)}, reference ${(bRef / aloneRate).toFixed(2)}`,
      );
    }

    if (parts.includes("load")) {
      console.log("\n--- responsive under output (goal: keys echo < 100 ms, Ctrl-C stops the screen < 250 ms, tasks ≤ 50 ms)");
      await underLoad("reference (webpty)", refPage, termload, file);
      await underLoad("demo page", demoPage, termload, file);
      await underLoad("console child window (tasks: parent / child)", child, termload, file, [con, child]);
    }

    if (parts.includes("memory")) {
      console.log("\n--- memory of one tab with one session after 100 MiB of output (goal ≤ 150 MiB), and after the session ends");
      report(`memory demo page before: ${memLine(await memory(demoPage))}`);
      await demoPage.bringToFront();
      const ms100 = await timeToMarker(demoPage, "head -c 75M /dev/zero | base64 -w 76; echo TB''DONE", "TBDONE", 240_000);
      report(`memory demo page after 100 MiB of output (${f1(100 / (ms100 / 1000))} MiB/s): ${memLine(await memory(demoPage))}`);
      await demoPage.keyboard.type("exit\n");
      await demoPage.waitForTimeout(2000);
      report(`memory demo page after exit: ${memLine(await memory(demoPage))}`);
      await child.close();
      await con.waitForTimeout(2000);
      report(`memory console page after its child window closed: ${memLine(await memory(con))}`);
    }
    await context.close();
  } finally {
    await browser.close();
  }
}

/**
 * The lossy path: a console network whose relay drops 1% of the packets it carries
 * (e2e/tools/lossyrelay in front of control, which hands out its URL in the DERP map);
 * echo and bulk in a console child window in headless Chromium.
 */
async function lossy() {
  const tool = await goTool("lossyrelay");
  let proxy = "";
  let stats = "";
  const lnet = await startConsoleNet({
    tagged: ["alpha"],
    controlArgs: async (url, n) => {
      const proc = n.track(spawn(tool, ["--upstream", url, "--drop", "0.01"], { stdio: ["ignore", "pipe", "inherit"] }));
      proxy = await new Promise((resolve, reject) => {
        let out = "";
        proc.stdout.on("data", (d) => {
          out += d;
          const m = out.match(/^URL: (\S+)$/m);
          if (m) resolve(m[1]);
        });
        proc.on("exit", (code) => reject(new Error(`lossyrelay exited ${code}`)));
      });
      return ["--server-url", proxy];
    },
  });
  const browser = await launch();
  try {
    const context = await browser.newContext({ viewport: { width: 960, height: 600 } });
    await install(context);
    const { con, child } = await openConsoleChild(context, proxy, 60_000);
    console.log(`\n--- lossy path: the relay drops 1% of packets (console child window, headless)`);
    await echo("lossy, console child window", child);
    await bulk("lossy, console child window", child, file, bytes);
    stats = await (await fetch(`${proxy}/lossyrelay/stats`)).text();
    report(`lossy relay: packet frames ${stats.trim()}`);
  } finally {
    await browser.close();
    await lnet.stop();
  }
}

/**
 * The hidden parent, in headful Chromium under Xvfb: the console tab in the background
 * (another tab in front of it in its window) with its child terminal window in front; echo
 * in the child beside the reference terminal in the same browser.
 */
async function hiddenParent() {
  const x = await startXvfb();
  const h = await launchHeadful(x.display);
  try {
    const context = h.context;
    await install(context);
    const refPage = await context.newPage();
    await refPage.goto(ref.url);
    await waitTerminal(refPage, prompt);
    const { con, child } = await openConsoleChild(context, net.url, 30_000);
    console.log(`\n--- hidden parent (headful Chromium under Xvfb): echo, ${keystrokes} keystrokes (goal as above)`);
    const eRef = await echo("reference (webpty), headful", refPage);
    // Another tab in front of the console in its window: the console page is hidden.
    await Promise.all([context.waitForEvent("page"), con.evaluate(() => void window.open("about:blank#front", "_blank"))]);
    await con.waitForFunction(() => document.visibilityState === "hidden", null, { timeout: 5000 });
    const state = {
      parent: await con.evaluate(() => document.visibilityState),
      child: await child.evaluate(() => document.visibilityState),
    };
    if (state.parent !== "hidden" || state.child !== "visible") throw new Error(`hidden parent: visibility is ${JSON.stringify(state)}`);
    // Long enough in the background for the browser's timer throttling to start.
    await con.waitForTimeout(11_000);
    const e = await echo(`console child window, parent ${state.parent}`, child, false);
    report(`echo p50 ratio to reference (hidden parent): ${(e.p50 / eRef.p50).toFixed(2)}×`);
  } finally {
    await h.close();
    await x.stop();
  }
}

/** Stops what started, newest first. @type {(() => Promise<void>)[]} */
const stops = [];
try {
  ref = await startWebPTY();
  stops.push(() => ref.stop());
  copyFileSync(file, join(ref.assets, "bulk.txt"));
  demo = await startDemo({ grace: "5s" });
  stops.push(() => demo.stop());
  net = await startConsoleNet({ tagged: ["alpha"] });
  stops.push(() => net.stop());
  termload = await goTool("termload");
  if (["echo", "bulk", "load", "memory"].some((p) => parts.includes(p)))
    for (const p of probes) for (const r of renderers) if (p === "render" || r === "dom") await headless(p, r); // the mutation probe reads DOM rows only
  if (parts.includes("hidden")) await hiddenParent();
  if (parts.includes("lossy")) await lossy();
} finally {
  for (const stop of stops.reverse()) await stop();
  rmSync(dir, { recursive: true, force: true });
}
