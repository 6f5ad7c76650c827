// Where bulk output's CPU time goes (issue 15): a DevTools trace with V8's sampling profiler
// (`disabled-by-default-v8.cpu_profiler`) of `cat` of TERMPROFILE_MIB (32) MiB on the demo page
// (?renderer=TERMPROFILE_RENDERER, dom), then for the page's main thread and the Worker: busy
// and idle time, the top self-time functions (Go names come from the wasm's name section: build
// with TSCONNECT_WASM_SYMBOLS=1 npm run build, or they show as wasm-function[N]) and self time
// by Go package / JavaScript file, and each thread's count of calls into script by kind.
// Run after `make build`: node e2e/browser/termprofile.mjs.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { startDemo, launch } from "./demo.js";
import { traceToMarker } from "./termprobe.mjs";

const MiB = 1 << 20;
const mib = Number(process.env.TERMPROFILE_MIB || 32);
const renderer = process.env.TERMPROFILE_RENDERER || "dom";
const topN = Number(process.env.TERMPROFILE_TOP || 25);
const dir = mkdtempSync(join(tmpdir(), "tsconnect-termprofile-"));
const file = join(dir, "bulk.txt");
writeFileSync(
  file,
  randomBytes((mib * MiB * 3) / 4)
    .toString("base64")
    .replace(/(.{76})/g, "$1\n"),
);

/** A profile node's name: Go's function for wasm, else function and file. */
function frameName(cf) {
  const fn = cf.functionName || "(anonymous)";
  if (String(cf.url).startsWith("wasm://") || /^wasm-function/.test(fn)) return fn;
  if (!cf.url) return fn;
  return `${fn} ${String(cf.url).split("/").pop()}:${cf.lineNumber ?? ""}`;
}

/** The group a frame counts in: a Go package for wasm, the file for JavaScript, V8's own pseudo-frames as they are. */
function groupName(cf) {
  const fn = cf.functionName || "";
  if (/\.wasm$/.test(String(cf.url)) || String(cf.url).startsWith("wasm://")) {
    // Go's names in the name section: the package path with "/" as "_", then ".Func" or
    // "._T_.Method" / ".__T_.Method"; a host name's dots (golang.org_x_...) stay.
    const parts = fn.split(".");
    const i = parts.findIndex((p, j) => j < parts.length - 1 && p.includes("_") && !p.startsWith("_"));
    return "go " + (i > 0 && i < 3 ? parts.slice(0, i + 1).join(".") : parts[0]);
  }
  if (!cf.url) return fn;
  return String(cf.url).split("/").pop() || "(js)";
}

/**
 * Per thread (pid:tid), the self time (µs) of each frame and group, from the trace's
 * ProfileChunk events (nodes arrive incrementally; timeDeltas[i] is the time before sample i).
 */
function profiles(events) {
  const byThread = new Map();
  // ProfileChunk events come from V8's profiler thread; the Profile event with the same id names the profiled thread.
  const owner = new Map();
  for (const e of events) if (e.name === "Profile") owner.set(`${e.pid}:${e.id}`, `${e.pid}:${e.tid}`);
  for (const e of events) {
    if (e.name !== "ProfileChunk") continue;
    const key = owner.get(`${e.pid}:${e.id}`) ?? `${e.pid}:${e.tid}`;
    let t = byThread.get(key);
    if (!t) byThread.set(key, (t = { nodes: new Map(), frames: new Map(), groups: new Map(), total: 0, idle: 0, pending: null }));
    const data = e.args?.data ?? {};
    for (const n of data.cpuProfile?.nodes ?? []) t.nodes.set(`${e.id}:${n.id}`, n.callFrame);
    const samples = data.cpuProfile?.samples ?? [];
    const deltas = data.timeDeltas ?? [];
    for (let i = 0; i < samples.length; i++) {
      // The time up to the next sample is this sample's.
      const cf = t.nodes.get(`${e.id}:${samples[i]}`);
      if (t.pending) {
        const dt = Math.max(0, deltas[i] ?? 0);
        add(t, t.pending, dt);
      }
      t.pending = cf ?? { functionName: "(unknown)", url: "" };
    }
  }
  return byThread;
}

function add(t, cf, dt) {
  t.total += dt;
  if (cf.functionName === "(idle)") {
    t.idle += dt;
    return;
  }
  const f = frameName(cf);
  const g = groupName(cf);
  t.frames.set(f, (t.frames.get(f) ?? 0) + dt);
  t.groups.set(g, (t.groups.get(g) ?? 0) + dt);
}

const demo = await startDemo();
const browser = await launch();
try {
  const { ms, events } = await traceToMarker(
    browser,
    demo.url,
    renderer,
    ["disabled-by-default-v8.cpu_profiler", "v8", "devtools.timeline"],
    `cat ${file}; echo TP''DONE`,
    "TPDONE",
  );
  const names = new Map();
  for (const e of events) if (e.name === "thread_name") names.set(`${e.pid}:${e.tid}`, e.args?.name ?? "?");
  console.log(
    `cat of ${mib} MiB, renderer ${renderer}: ${ms.toFixed(0)} ms, ${(mib / (ms / 1000)).toFixed(2)} MiB/s (load ${loadavg()
      .map((l) => l.toFixed(1))
      .join(" ")})`,
  );
  const pct = (v, total) => `${((100 * v) / Math.max(1, total)).toFixed(1)}%`;
  const fmt = (m, total) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, topN)
      .map(([k, v]) => `  ${(v / 1000).toFixed(0).padStart(6)} ms ${pct(v, total).padStart(6)}  ${k}`)
      .join("\n");
  for (const [key, t] of [...profiles(events)].sort((a, b) => b[1].total - b[1].idle - (a[1].total - a[1].idle))) {
    const name = names.get(key) ?? key;
    if (process.env.TERMPROFILE_DEBUG) console.log(`thread ${key} ${name}: ${(t.total / 1000).toFixed(0)} ms sampled`);
    if (!/CrRendererMain|DedicatedWorker/.test(name)) continue;
    const busy = t.total - t.idle;
    const calls = new Map();
    for (const e of events)
      if (e.ph === "X" && `${e.pid}:${e.tid}` === key && (e.name === "FunctionCall" || e.name === "EventDispatch")) {
        const k = `${e.name} ${e.args?.data?.type ?? e.args?.data?.functionName ?? ""}`;
        calls.set(k, (calls.get(k) ?? 0) + 1);
      }
    console.log(
      `${name}: calls into script ${[...calls]
        .sort((a, b) => b[1] - a[1])
        .slice(0, 6)
        .map(([k, v]) => `${v} × ${k}`)
        .join(", ")}`,
    );
    console.log(
      `\n== ${name} (${key}): sampled ${(t.total / 1000).toFixed(0)} ms, busy ${(busy / 1000).toFixed(0)} ms (${pct(busy, t.total)}), idle ${(t.idle / 1000).toFixed(0)} ms`,
    );
    if (busy < 1000) continue;
    console.log(`top self time (% of busy):\n${fmt(t.frames, busy)}`);
    console.log(`self time by Go package / JS file:\n${fmt(t.groups, busy)}`);
  }
} finally {
  await browser.close();
  await demo.stop();
  rmSync(dir, { recursive: true, force: true });
}
