// What makes the page's long main-thread tasks during bulk output: a DevTools trace (Chromium's
// devtools.timeline categories) of `cat` of TERMTRACE_MIB (16) MiB on the demo page, with
// ?renderer=TERMTRACE_RENDERER (dom); for each task over 50 ms on the page's main thread, the
// time of its direct children by kind (script with its function, style, layout, paint, ...),
// then the totals over all of them. Run after `make build`: node e2e/browser/termtrace.mjs.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startDemo, launch } from "./demo.js";
import { traceToMarker } from "./termprobe.mjs";

const MiB = 1 << 20;
const mib = Number(process.env.TERMTRACE_MIB || 16);
const renderer = process.env.TERMTRACE_RENDERER || "dom";
const dir = mkdtempSync(join(tmpdir(), "tsconnect-termtrace-"));
const file = join(dir, "bulk.txt");
writeFileSync(
  file,
  randomBytes((mib * MiB * 3) / 4)
    .toString("base64")
    .replace(/(.{76})/g, "$1\n"),
);

/** A trace event's name, with the function for script. */
function kind(e) {
  const d = e.args?.data ?? {};
  if (e.name === "FunctionCall")
    return `script ${d.functionName || "(anonymous)"} ${String(d.url ?? "")
      .split("/")
      .pop()}:${d.lineNumber ?? ""}`;
  if (e.name === "TimerFire") return `TimerFire`;
  return e.name;
}

const demo = await startDemo();
const browser = await launch();
try {
  const { ms, events } = await traceToMarker(
    browser,
    demo.url,
    renderer,
    ["devtools.timeline", "disabled-by-default-devtools.timeline", "v8.execute"],
    `cat ${file}; echo TR''DONE`,
    "TRDONE",
  );
  // The page's main thread: the renderer thread with the most FunctionCall time.
  const threads = new Map();
  for (const e of events) if (e.name === "thread_name" && e.args?.name === "CrRendererMain") threads.set(`${e.pid}:${e.tid}`, 0);
  for (const e of events)
    if (e.ph === "X" && e.name === "FunctionCall" && threads.has(`${e.pid}:${e.tid}`))
      threads.set(`${e.pid}:${e.tid}`, threads.get(`${e.pid}:${e.tid}`) + e.dur);
  const main = [...threads].sort((a, b) => b[1] - a[1])[0]?.[0];
  const onMain = events.filter((e) => e.ph === "X" && `${e.pid}:${e.tid}` === main).sort((a, b) => a.ts - b.ts || b.dur - a.dur);
  const tasks = onMain.filter((e) => e.name === "RunTask" || e.name === "ThreadControllerImpl::RunTask");
  const long = tasks.filter((t) => t.dur > 50_000);
  console.log(
    `cat of ${mib} MiB, renderer ${renderer}: ${(mib / (ms / 1000)).toFixed(1)} MiB/s; ${tasks.length} tasks on the page's main thread, ${long.length} over 50 ms (longest ${(Math.max(0, ...tasks.map((t) => t.dur)) / 1000).toFixed(1)} ms)`,
  );
  const total = new Map();
  for (const t of long.sort((a, b) => b.dur - a.dur).slice(0, 200)) {
    const end = t.ts + t.dur;
    const by = new Map();
    // Direct children: events inside t not inside an earlier child.
    let childEnd = 0;
    for (const e of onMain) {
      if (e === t || e.ts < t.ts || e.ts + e.dur > end || e.ts < childEnd) continue;
      if (e.name === "RunTask" || e.name === "ThreadControllerImpl::RunTask") continue;
      childEnd = e.ts + e.dur;
      by.set(kind(e), (by.get(kind(e)) ?? 0) + e.dur);
    }
    for (const [k, v] of by) total.set(k, (total.get(k) ?? 0) + v);
  }
  const top = (m) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 12)
      .map(([k, v]) => `  ${(v / 1000).toFixed(1)} ms  ${k}`)
      .join("\n");
  const sum = long.reduce((s, t) => s + t.dur, 0);
  console.log(`the ${long.length} long tasks: ${(sum / 1000).toFixed(0)} ms in all; their direct children by kind:\n${top(total)}`);
  // Inside the script: the heaviest nested events (xterm.js's parse and render are FunctionCalls of their own when called from a timer or a frame).
  const nested = new Map();
  for (const t of long) {
    const end = t.ts + t.dur;
    for (const e of onMain)
      if (
        e !== t &&
        e.ts >= t.ts &&
        e.ts + e.dur <= end &&
        e.name !== "FunctionCall" &&
        e.name !== "RunTask" &&
        e.name !== "ThreadControllerImpl::RunTask"
      )
        nested.set(e.name, (nested.get(e.name) ?? 0) + e.dur);
  }
  console.log(`all events inside them by name (nested ones counted in their parents too):\n${top(nested)}`);
} finally {
  await browser.close();
  await demo.stop();
  rmSync(dir, { recursive: true, force: true });
}
