// Control replicas on PostgreSQL seen from Chromium (issue 17): the console on replica A, an
// open SSH session in a child window (the wasm node in its Worker, given A's URL only); A
// SIGKILLed: the session's output goes on through B (the wasm dials the replicas its maps
// list, and its relay path moves with it), and a policy edit through B then cuts it.
import { spawn, execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { test, before, after } from "node:test";
import { bin, basePolicy, freePort, goTool, startConsoleNet, startUntil } from "./console-harness.mjs";
import { launch, waitTerminal } from "./demo.js";
import { openTicker } from "./outage.mjs";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Starts a real PostgreSQL (e2e/tools/pgserver); resolves with a fresh database's URL and stop(). */
async function startPostgres() {
  const proc = spawn(await goTool("pgserver"), [], { stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`pgserver printed no URL in 60 s:\n${out}`)), 60_000);
    const take = (/** @type {Buffer} */ d) => {
      out += d;
      const m = out.match(/^(postgres:\/\/\S+)$/m);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    proc.stdout.on("data", take);
    proc.stderr.on("data", (d) => (out += d));
    proc.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`pgserver exited ${code}:\n${out}`));
    });
  });
  return {
    url,
    async stop() {
      if (proc.exitCode !== null) return;
      const exited = new Promise((r) => proc.on("exit", r));
      proc.stdin.end();
      await exited;
    },
  };
}

/** The agent's status through its local API (`tsconnect --socket S status --json`). */
function agentStatus(socket) {
  return JSON.parse(execFileSync(bin, ["--socket", socket, "status", "--json"], { encoding: "utf8" }));
}

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

test("replica A SIGKILLed: the browser's open session goes on through B, and a policy edit through B cuts it", async (t) => {
  const pg = await startPostgres();
  t.after(() => pg.stop());
  const net = await startConsoleNet({ tagged: ["alpha"], controlArgs: async () => ["--store", pg.url] });
  t.after(() => net.stop());
  const bURL = `http://127.0.0.1:${await freePort()}`;
  const bState = join(net.dir, "control-b");
  const b = await startUntil(
    ["control", "--listen", bURL.slice("http://".length), "--state", bState, "--store", pg.url, "--ephemeral-grace", "3s"],
    /serving /,
    {},
    "control B",
  );
  net.track(b.proc);
  // The agent learns of B from A's maps (the replicas' lease-like list, a full map on a change).
  const agent = net.agents.alpha;
  for (const deadline = Date.now() + 30_000; !(agentStatus(agent.socket).controlURLs ?? []).includes(bURL);) {
    if (Date.now() > deadline) throw new Error(`alpha's maps never listed replica B (${bURL})`);
    await sleep(100);
  }

  // The browser's node registers through A after B is up, so its first map lists both.
  const tk = await openTicker(browser, net);
  t.after(() => tk.context.close());
  await sleep(2000);
  if ((await tk.tickAfter(Date.now() - 500, 5000)) === null) throw new Error("the session prints nothing before the kill");

  const exited = new Promise((r) => net.controlProc.on("exit", r));
  net.controlProc.kill("SIGKILL");
  await exited;
  const killed = Date.now();
  const resumed = await tk.tickAfter(killed + 200, 15_000);
  if (resumed === null) throw new Error("the open session printed nothing within 15 s of replica A's SIGKILL");
  t.diagnostic(`the session's output went on ${resumed - killed} ms after replica A was killed (goal: within 2 s)`);
  for (const deadline = Date.now() + 15_000; agentStatus(agent.socket).controlURL !== bURL;) {
    if (Date.now() > deadline) throw new Error(`alpha is not on replica B 15 s after the kill`);
    await sleep(50);
  }

  // The session still takes input.
  await tk.child.keyboard.press("Control+C");
  await tk.child.keyboard.type("echo after-$((40+2))\n");
  await waitTerminal(tk.child, /^after-42\s*$/m);

  // A policy edit through B (its own --state: admin socket) revokes the login at once.
  const f = join(net.dir, "policy-no-root.hujson");
  writeFileSync(f, basePolicy.replace('"users": ["root", "daemon"]', '"users": ["daemon"]'));
  const edited = Date.now();
  execFileSync(bin, ["policy", "set", "--state", bState, f], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  await waitTerminal(tk.child, /Access revoked\./, 10_000);
  t.diagnostic(`the policy edit through B cut the session ${Date.now() - edited} ms after the edit began (goal: within 1 s)`);
});
