// A network for the console's browser tests: `tsconnect control` on a free loopback port,
// users with passwords, a policy, and SSH agents (`tsconnect up --ssh`) with keys from
// `tsconnect keys create`; plus helpers to drive the console's pages.
import { spawn, spawnSync, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, after } from "node:test";
import assert from "node:assert/strict";
import { bin as defaultBin, root, launch, waitTerminal } from "./demo.js";

export const bin = process.env.TSCONNECT_BIN || defaultBin;

/** The policy the tests start from: alice may SSH to tag:server machines as root or daemon; bob has no rule. */
export const basePolicy = `// console tests
{
	"tagOwners": {"tag:server": ["alice@example.com"]},
	"acls": [
		{"action": "accept", "src": ["*"], "dst": ["*:*"]},
	],
	"ssh": [
		{"action": "accept", "src": ["alice@example.com"], "dst": ["tag:server"], "users": ["root", "daemon"]},
	],
}
`;

/** A policy whose ssh rule (alice to tag:server as root) names the recorders tagged tag:rec. */
export const recorderPolicy = `{
	"tagOwners": {"tag:server": ["alice@example.com"], "tag:rec": ["alice@example.com"]},
	"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}],
	"ssh": [{"action": "accept", "src": ["alice@example.com"], "dst": ["tag:server"], "users": ["root"], "recorder": ["tag:rec"]}],
}`;

export const alice = { email: "alice@example.com", password: "correct horse battery", admin: true };
export const bob = { email: "bob@example.com", password: "bob has a password", admin: false };

/** Resolves with a free loopback TCP port. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = /** @type {import("node:net").AddressInfo} */ (s.address());
      s.close(() => resolve(port));
    });
  });
}

/** Starts a process and resolves once its output matches re (rejects if it exits first). */
export function startUntil(args, re, env = {}, what = args[0]) {
  const proc = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
  let out = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: no ${re} in 60 s:\n${out}`)), 60_000);
    let up = false;
    const on = (d) => {
      out += d;
      if (!up && re.test(out)) {
        up = true;
        clearTimeout(timer);
        resolve({ proc, log: () => out });
      }
    };
    proc.stdout.on("data", on);
    proc.stderr.on("data", on);
    proc.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited ${code}:\n${out}`));
    });
  });
}

async function stopProc(proc) {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  proc.kill("SIGTERM");
  await new Promise((r) => proc.on("exit", r));
}

/**
 * Starts control with alice (admin) and bob (member), basePolicy, and the agents named in
 * tagged (tag:server, SSH) and plain (alice's, no SSH); controlArgs, if set, returns more
 * flags for control, given its URL and the net being built.
 * @param {{ tagged?: string[], plain?: string[], controlArgs?: (url: string, net: any) => Promise<string[]> }} [opts]
 */
export async function startConsoleNet({ tagged = ["alpha", "beta"], plain = [], controlArgs } = {}) {
  if (!existsSync(bin)) throw new Error(`${bin} is missing: run npm run build && go build -o bin/tsconnect ./cmd/tsconnect`);
  const dir = mkdtempSync(join(tmpdir(), "tsconnect-console-"));
  const state = join(dir, "control");
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const procs = [];
  const net = {
    url,
    state,
    dir,
    /** Runs an admin command against the running control server. */
    admin(args, input) {
      return execFileSync(bin, [...args.slice(0, 2), "--state", state, ...args.slice(2)], {
        encoding: "utf8",
        input,
        stdio: ["pipe", "pipe", "pipe"],
      });
    },
    /**
     * Registers an agent (SSH on by default) with a fresh key, tagged or (tags '') owned by
     * user, with more `up` flags in args; resolves once it is up, with its local API socket (for `tsconnect --socket`).
     */
    async agent(name, { tags = "tag:server", ssh = true, user = alice.email, args: more = /** @type {string[]} */ ([]) } = {}) {
      const keyArgs = ["keys", "create", ...(tags ? ["--tags", tags] : ["--user", user])];
      const key = net.admin(keyArgs).trim().split("\n").pop();
      const adir = join(dir, `agent-${procs.length}`);
      const socket = join(dir, `agent-${procs.length}.sock`);
      const args = [
        "up",
        ...(ssh ? ["--ssh"] : []),
        ...more,
        "--login-server",
        url,
        "--auth-key",
        key,
        "--hostname",
        name,
        "--state",
        adir,
      ];
      const a = await startUntil(args, /up: node \S+/, { TSCONNECT_SOCKET: socket }, `up ${name}`);
      procs.push(a.proc);
      const agent = {
        ...a,
        socket,
        /** Kills the agent (SIGKILL: its connections die with it) and starts it again on its state. */
        async restart() {
          agent.proc.kill("SIGKILL");
          await /** @type {Promise<void>} */ (
            new Promise((r) =>
              agent.proc.exitCode !== null || agent.proc.signalCode !== null ? r(undefined) : agent.proc.on("exit", () => r(undefined)),
            )
          );
          const b = await startUntil(args, /up: node \S+/, { TSCONNECT_SOCKET: socket }, `up ${name} again`);
          procs.push(b.proc);
          agent.proc = b.proc;
          agent.log = b.log;
        },
      };
      return agent;
    },
    /**
     * Starts `tsconnect recorder` as node name with a fresh key of tags; resolves once it
     * serves, with its storage directory.
     */
    async recorder(name, { tags = "tag:rec" } = {}) {
      const key = net.admin(["keys", "create", "--tags", tags]).trim().split("\n").pop();
      const rdir = join(dir, `recorder-${procs.length}`);
      const args = ["recorder", "--login-server", url, "--auth-key", key, "--hostname", name, "--state", rdir, "--min-free-mib", "0"];
      const r = await startUntil(
        args,
        /serving recordings on port/,
        { TSCONNECT_SOCKET: join(dir, `rec-${procs.length}.sock`) },
        `recorder ${name}`,
      );
      procs.push(r.proc);
      return { ...r, storage: join(rdir, "recordings") };
    },
    setPolicy(text) {
      const f = join(dir, "policy.hujson");
      writeFileSync(f, text);
      return net.admin(["policy", "set", f]);
    },
    /** Nodes as the API lists them (GET /api/v1/nodes), fetched with a fresh login of alice. */
    async machines() {
      const s = await apiLogin(url, alice);
      const r = await fetch(`${url}/api/v1/nodes`, { headers: { Cookie: s.cookie } });
      return (await r.json()).nodes;
    },
    /** Stops proc (a process the test started) with the network, in reverse order of starting. */
    track(proc) {
      procs.push(proc);
      return proc;
    },
    /**
     * Registers a node through the control protocol with the Hostinfo given (e2e/tools/rawnode):
     * any hostname and OS text, no WireGuard. Resolves once registered, with its event lines.
     */
    async rawNode({ hostname, os = "linux", tags = "", user = alice.email, ssh = false }) {
      const keyArgs = ["keys", "create", ...(tags ? ["--tags", tags] : ["--user", user])];
      const key = net.admin(keyArgs).trim().split("\n").pop();
      const tool = await goTool("rawnode");
      const proc = spawn(tool, ["--control", url, "--hostname", hostname, "--os", os, ...(ssh ? ["--ssh"] : [])], {
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...process.env, TSCONNECT_AUTH_KEY: key },
      });
      procs.push(proc);
      const node = lineEvents(proc, `rawnode ${hostname}`);
      const reg = await node.next((e) => e.event === "registered");
      return { ...node, proc, id: reg.id, name: reg.name };
    },
    async stop() {
      for (const p of procs.reverse()) await stopProc(p);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  let extra = [];
  try {
    if (controlArgs) extra = await controlArgs(url, net);
  } catch (e) {
    await net.stop();
    throw e;
  }
  const control = await startUntil(
    ["control", "--listen", `127.0.0.1:${port}`, "--state", state, "--ephemeral-grace", "3s", ...extra],
    /serving /,
    {},
    "control",
  ).catch(async (e) => {
    await net.stop();
    throw e;
  });
  procs.push(control.proc);
  net.controlLog = control.log;
  net.controlProc = control.proc;
  try {
    if (!process.env.B_SKIP_USERS) {
      for (const u of [alice, bob]) {
        net.admin(["users", "create", ...(u.admin ? ["--admin"] : []), "--password-stdin", u.email], u.password + "\n");
      }
    }
    net.setPolicy(basePolicy);
    net.agents = {};
    for (const name of tagged) net.agents[name] = await net.agent(name);
    for (const name of plain) await net.agent(name, { tags: "", ssh: false });
  } catch (e) {
    await net.stop();
    throw e;
  }
  return net;
}

/** Logs in through the API (Node fetch; Origin set as a browser would). */
/**
 * watchPage returns a page hook that records in problems what a user would notice went
 * wrong: an uncaught error, a dialog (dismissed), a Content Security Policy refusal.
 * @param {string[]} problems
 * @returns {(p: import("playwright-core").Page) => void}
 */
export function watchPage(problems) {
  return (p) => {
    p.on("pageerror", (e) => problems.push(`pageerror: ${e}`));
    p.on("dialog", (d) => {
      problems.push(`dialog: ${d.message()}`);
      void d.dismiss();
    });
    p.on("console", (m) => {
      if (m.type() === "error" && /Content Security Policy|Refused to/i.test(m.text())) problems.push(`CSP: ${m.text()}`);
    });
  };
}

export async function apiLogin(url, user) {
  const r = await fetch(`${url}/api/v1/login`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Origin: url },
    body: JSON.stringify({ email: user.email, password: user.password }),
  });
  if (r.status !== 200) throw new Error(`login ${user.email}: HTTP ${r.status} ${await r.text()}`);
  const body = await r.json();
  const cookie = (r.headers.get("set-cookie") || "").split(";")[0];
  return { cookie, csrf: body.csrfToken };
}

/** Logs in through the console's login form (at /admin/ + query) and waits for the Machines page. */
export async function consoleLogin(page, url, user, query = "") {
  await page.goto(`${url}/admin/${query}`);
  await page.locator("#login-email").fill(user.email);
  await page.locator("#login-password").fill(user.password);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.locator('body[data-page="machines"]').waitFor();
}

/**
 * A fresh browser context (closed after test t) whose pages record page errors, CSP
 * refusals and dialogs into problems (watchPage); resolves with it and its first page.
 */
export async function watchedPage(browser, problems, t) {
  const context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
  t.after(() => context.close());
  context.on("page", watchPage(problems));
  return { context, page: await context.newPage() };
}

/**
 * Finds the node called name (or name.something) with SSH host keys anywhere in a status answer.
 * @param {any} v
 * @param {string} name
 * @returns {any}
 */
export function findNode(v, name) {
  if (!v || typeof v !== "object") return undefined;
  if (typeof v.name === "string" && (v.name === name || v.name.startsWith(name + ".")) && v.sshHostKeys) return v;
  for (const x of Array.isArray(v) ? v : Object.values(v)) {
    const f = findNode(x, name);
    if (f) return f;
  }
  return undefined;
}

/**
 * Runs real OpenSSH (`ssh -tt`, BatchMode) as user@host with cmd through node's `tsconnect nc`
 * (node: an agent of net's, by its socket), pinning host's keys as node sees them (waiting up
 * to 20 s for them); resolves with ssh's exit status, stdout and stderr.
 * @param {any} net @param {{ socket: string }} node @param {string} host @param {string} user @param {string} cmd
 * @returns {Promise<{ status: number | null, stdout: string, stderr: string }>}
 */
export async function opensshVia(net, node, host, user, cmd) {
  /** @type {any} */
  let n;
  for (let i = 0; i < 100 && !n; i++, await new Promise((r) => setTimeout(r, 200))) {
    n = findNode(JSON.parse(execFileSync(bin, ["--socket", node.socket, "status", "--json"], { encoding: "utf8" })), host);
  }
  assert.ok(n, `${node.socket} sees ${host}'s host keys`);
  const known = join(net.dir, `known_hosts-${host}`);
  writeFileSync(known, n.sshHostKeys.map((/** @type {string} */ k) => `${host} ${k}`).join("\n") + "\n");
  const r = spawnSync(
    "ssh",
    [
      "-F",
      "/dev/null",
      "-tt",
      "-o",
      `ProxyCommand=${bin} --socket ${node.socket} nc %h %p`,
      "-o",
      "BatchMode=yes",
      "-o",
      `UserKnownHostsFile=${known}`,
      "-o",
      "GlobalKnownHostsFile=/dev/null",
      `${user}@${host}`,
      cmd,
    ],
    { encoding: "utf8", env: { ...process.env, HOME: net.dir }, timeout: 60_000 },
  );
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The Machines row of name. */
export function machineRow(page, name) {
  return page.locator(`tr[data-machine="${name}"]`);
}

/** Opens the SSH… dialog of a machine and waits for its user list (or reason). */
export async function openSSHDialog(page, name) {
  await machineRow(page, name).locator(".ssh-button").click();
  const dlg = page.locator("dialog[open]");
  await dlg.locator("input[name=user], .reason, .error:not([hidden])").first().waitFor();
  return dlg;
}

/**
 * Opens an SSH session to machine name as root from the console's SSH… dialog and resolves
 * with its child window once the shell prompt shows.
 * @param {import("playwright-core").Page} page @param {import("playwright-core").BrowserContext} context @param {string} name
 */
export async function openRootTerminal(page, context, name) {
  const dlg = await openSSHDialog(page, name);
  await dlg.locator('input[name=user][value="root"]').check();
  const [term] = await Promise.all([context.waitForEvent("page"), dlg.getByRole("button", { name: "Connect" }).click()]);
  await term.waitForLoadState();
  await waitTerminal(term, /[$#] *$/m, 60_000);
  return term;
}

const built = new Map();

/**
 * Builds the Go main ./e2e/tools/NAME (or ./cmd/testop of the test-only module internal/testop
 * for 'testop') once per run into a temporary directory and returns its path;
 * TSCONNECT_TOOL_NAME overrides it.
 */
export function goTool(name) {
  const override = process.env[`TSCONNECT_TOOL_${name.toUpperCase()}`];
  if (override) return Promise.resolve(override);
  if (!built.has(name)) {
    const [pkg, cwd] = name === "testop" ? ["./cmd/testop", join(root, "internal", "testop")] : [`./e2e/tools/${name}`, root];
    const dir = mkdtempSync(join(tmpdir(), `tsconnect-tool-${name}-`));
    const out = join(dir, name);
    built.set(
      name,
      new Promise((resolve, reject) => {
        const p = spawn("go", ["build", "-o", out, pkg], { cwd, stdio: ["ignore", "ignore", "pipe"] });
        let err = "";
        p.stderr.on("data", (d) => {
          err += d;
        });
        p.on("exit", (code) => (code === 0 ? resolve(out) : reject(new Error(`go build ${pkg}: exit ${code}\n${err}`))));
      }),
    );
    process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
  }
  return built.get(name);
}

/** Follows a process's JSON-line stdout: events so far, and next(pred) waiting for a match. */
function lineEvents(proc, what) {
  const events = [];
  const waiters = [];
  let buf = "";
  let err = "";
  proc.stderr.on("data", (d) => {
    err += d;
  });
  proc.stdout.on("data", (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      let e;
      try {
        e = JSON.parse(line);
      } catch {
        e = { event: "text", text: line };
      }
      events.push(e);
      for (const w of [...waiters]) if (w.pred(e)) w.resolve(e);
    }
  });
  proc.on("exit", (code) => {
    for (const w of [...waiters]) w.reject(new Error(`${what} exited ${code} before the awaited event:\n${err}`));
  });
  return {
    events,
    log: () => err,
    /** Resolves with the first event (seen already or to come) matching pred. */
    next(pred, timeout = 30_000) {
      const seen = events.find(pred);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const w = {
          pred,
          resolve: (e) => {
            done();
            resolve(e);
          },
          reject: (e) => {
            done();
            reject(e);
          },
        };
        const timer = setTimeout(
          () => w.reject(new Error(`${what}: no matching event in ${timeout / 1000} s; got ${JSON.stringify(events)}\n${err}`)),
          timeout,
        );
        const done = () => {
          clearTimeout(timer);
          waiters.splice(waiters.indexOf(w), 1);
        };
        if (proc.exitCode !== null) {
          clearTimeout(timer);
          reject(new Error(`${what} has exited (${proc.exitCode}):\n${err}`));
          return;
        }
        waiters.push(w);
      });
    },
  };
}

/**
 * Runs the test OpenID Provider (internal/testop) as a process with users ({email, password,
 * email_verified, groups}) and one client; resolves with {issuer, proc, log, stop}.
 */
export async function startOP({ users, client }) {
  const tool = await goTool("testop");
  const proc = spawn(tool, ["--config", "-"], { stdio: ["pipe", "pipe", "pipe"] });
  proc.stdin.end(JSON.stringify({ users, client }));
  let out = "";
  let err = "";
  proc.stderr.on("data", (d) => {
    err += d;
  });
  const issuer = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`testop printed no issuer in 30 s:\n${err}`)), 30_000);
    proc.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/^(http:\/\/127\.0\.0\.1:\d+)$/m);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    proc.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`testop exited ${code}:\n${err}`));
    });
  });
  return { issuer, proc, log: () => err, stop: () => stopProc(proc) };
}

/**
 * consoleSuite registers a console test file's before and after: a network
 * (startConsoleNet(opts)) and a Chromium, both stopped after the tests, and then the check
 * that no page recorded a problem (watchPage). It returns the suite, whose net and browser are
 * set once the tests run; page(t) is watchedPage for test t. With skip, nothing starts.
 * @param {Parameters<typeof startConsoleNet>[0]} [opts]
 * @param {{ skip?: string | false }} [how]
 */
export function consoleSuite(opts, { skip = false } = {}) {
  const s = {
    /** @type {any} */ net: undefined,
    /** @type {any} */ browser: undefined,
    /** @type {string[]} */ problems: [],
    page: (/** @type {any} */ t) => watchedPage(s.browser, s.problems, t),
  };
  before(async () => {
    if (skip) return;
    s.net = await startConsoleNet(opts);
    s.browser = await launch();
  });
  after(async () => {
    await s.browser?.close();
    if (process.exitCode) console.error(s.net?.controlLog());
    await s.net?.stop();
    assert.deepEqual(s.problems, [], "no page errors, CSP refusals or dialogs");
  });
  return s;
}
