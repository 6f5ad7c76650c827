// The WebRTC spike's benchmark (issue 21 part 6): from a Worker in Debian's Chromium, round trips
// of 64-byte pings and a one-way stream of 1,400-byte packets over (a) an unordered,
// maxRetransmits:0 data channel to e2e/tools/rtcspike (pion) and (b) the DERP relay over
// WebSocket to the same tool's relay client, side by side in each run, the order alternating.
// The relay is "tsconnect derp --dev" ($TSCONNECT, else bin/tsconnect) when that exists, else the
// tool's own (the same derpws server). Loopback only. Usage: node e2e/browser/rtcbench.mjs [--runs 3] [--pings 300] [--packets 20000] [--sctp-recv-buffer BYTES]
import { spawn, execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { root, bin, launch } from "./demo.js";

const { values: opt } = parseArgs({
  options: {
    runs: { type: "string", default: "3" },
    pings: { type: "string", default: "300" },
    packets: { type: "string", default: "20000" },
    size: { type: "string", default: "1400" },
    "sctp-recv-buffer": { type: "string", default: "0" },
  },
});
const runs = Number(opt.runs);
const tsconnect = process.env.TSCONNECT || bin;
const bench = { pings: Number(opt.pings), packets: Number(opt.packets), size: Number(opt.size) };

const tmp = mkdtempSync(join(tmpdir(), "rtcbench-"));
/** @type {import("node:child_process").ChildProcess[]} */
const procs = [];
/** @type {import("playwright-core").Browser | undefined} */
let browser;

/**
 * Starts a command and resolves with the first match of re in its stdout or stderr.
 * @param {string} cmd @param {string[]} args @param {RegExp} re @param {string} [cwd]
 */
function startUntil(cmd, args, re, cwd) {
  const p = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], cwd });
  procs.push(p);
  let out = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${cmd} printed nothing matching ${re} in 30 s:\n${out}`)), 30_000);
    const on = (/** @type {Buffer} */ d) => {
      out += d;
      const m = out.match(re);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    p.stdout?.on("data", on);
    p.stderr?.on("data", on);
    p.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${cmd} exited ${code}:\n${out}`));
    });
  });
}

/** @param {number[]} xs */
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

try {
  const tool = join(tmp, "rtcspike");
  execFileSync("go", ["build", "-o", tool, "."], { cwd: join(root, "e2e", "tools", "rtcspike"), stdio: "inherit" });
  let relay;
  if (existsSync(tsconnect)) {
    const addr = await startUntil(tsconnect, ["derp", "--dev", "--listen", "127.0.0.1:0"], /serving on (\S+)/);
    relay = `http://${addr}/derp`;
  } else {
    relay = await startUntil(tool, ["relay"], /^RELAY: (\S+)$/m);
  }
  const url = await startUntil(
    tool,
    ["agent", "--relay", relay, "--page", join(root, "e2e", "browser"), "--sctp-recv-buffer", opt["sctp-recv-buffer"]],
    /^URL: (\S+)$/m,
  );
  browser = await launch({ args: ["--allow-loopback-in-peer-connection", "--disable-features=WebRtcHideLocalIpsWithMdns"] });
  const page = await browser.newPage();
  await page.goto(url);
  const setup = await page.evaluate(() => window["rtcbench"].setup());
  console.log(
    `relay ${existsSync(tsconnect) ? "tsconnect derp" : "rtcspike relay"}; data channel transferred to the Worker; cross-origin isolated ${setup.isolated}; setup ${setup.setupMs.toFixed(0)} ms`,
  );
  console.log(`${bench.pings} pings of 64 B, ${bench.packets} packets of ${bench.size} B one way, per path and run`);
  console.log("run path    rtt p50   rtt p99  lost  MB/s (recv)  MB/s (send)  loss %  of it in the tool");
  /** @type {Record<string, any[]>} */
  const all = { dc: [], relay: [] };
  for (let r = 0; r < runs; r++) {
    for (const path of r % 2 ? ["relay", "dc"] : ["dc", "relay"]) {
      const res = await page.evaluate(([p, o]) => window["rtcbench"].run(p, o), [path, bench]);
      all[path].push(res);
      console.log(
        `${String(r + 1).padStart(3)} ${path.padEnd(6)} ${res.rttP50.toFixed(3).padStart(7)} ms ${res.rttP99.toFixed(3).padStart(7)} ms ${String(res.lostPings).padStart(5)} ${res.mbps.toFixed(1).padStart(12)} ${res.sendMBps.toFixed(1).padStart(12)} ${res.lossPct.toFixed(2).padStart(7)} ${path === "relay" ? String(res.agentDrops).padStart(8) : "       -"}`,
      );
    }
  }
  for (const path of ["dc", "relay"]) {
    const rs = all[path];
    console.log(
      `median ${path}: rtt p50 ${median(rs.map((x) => x.rttP50)).toFixed(3)} ms, p99 ${median(rs.map((x) => x.rttP99)).toFixed(3)} ms, ${median(rs.map((x) => x.mbps)).toFixed(1)} MB/s, loss ${median(rs.map((x) => x.lossPct)).toFixed(2)} %`,
    );
  }
  const logs = await page.evaluate(() => window["rtcbench"].logs);
  if (logs.length) console.log(logs.join("\n"));
} finally {
  await browser?.close();
  for (const p of procs) if (p.exitCode === null) p.kill("SIGTERM");
  await Promise.all(procs.map((p) => (p.exitCode !== null ? null : new Promise((r) => p.on("exit", r)))));
  rmSync(tmp, { recursive: true, force: true });
}
