// A browser session across a certificate renewal: control gets its certificate for control.test
// from a real ACME server (Pebble, e2e/tools/pebblenet) and renews it, with a 90 s lifetime, a
// third of it before the end, while an SSH session in a console child window prints on; the
// browser trusts Pebble's root through its own NSS database and resolves control.test to
// 127.0.0.1, the agent does so through a mount namespace of its own whose /etc/hosts names it.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tls from "node:tls";
import { launch, waitTerminal, terminalText } from "./demo.js";
import { startConsoleNet, consoleLogin, machineRow, openSSHDialog, alice, goTool, bin } from "./console-harness.mjs";

const validity = "90s";
let net;
let pebble;
let agent;
let browser;
let home;
let port;
let root;

/** Starts pebblenet for TLS-ALPN-01 validation on port; resolves with its JSON line. */
async function startPebble(tlsPort) {
  const tool = await goTool("pebblenet");
  const proc = spawn(tool, ["--tls-port", String(tlsPort), "--validity", validity], { stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  let err = "";
  proc.stderr.on("data", (d) => (err += d));
  const info = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`pebblenet printed nothing in 120 s:\n${err}`)), 120_000);
    proc.stdout.on("data", (d) => {
      out += d;
      const i = out.indexOf("\n");
      if (i >= 0) {
        clearTimeout(timer);
        resolve(JSON.parse(out.slice(0, i)));
      }
    });
    proc.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`pebblenet exited ${code}:\n${err}`));
    });
  });
  return { ...info, proc };
}

/** The certificate control serves for control.test, verified against Pebble's root. */
function servedCert() {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: "127.0.0.1", port, servername: "control.test", ca: root }, () => {
      const c = s.getPeerCertificate();
      s.end();
      resolve(c);
    });
    s.on("error", reject);
  });
}

async function waitFor(what, cond, ms) {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      const v = await cond();
      if (v) return v;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`gave up after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

before(async () => {
  if (process.getuid?.() !== 0)
    throw new Error("this test needs root (a mount namespace for the agent's /etc/hosts); run the tests as root");
  net = await startConsoleNet({
    tagged: [],
    controlArgs: async (url) => {
      port = Number(new URL(url).port);
      pebble = await startPebble(port);
      root = readFileSync(pebble.root);
      // Control reaches the ACME directory through the system's trust store.
      process.env.SSL_CERT_FILE = pebble.httpsCA;
      return ["--acme-domain", "control.test", "--acme-directory", pebble.directory, "--server-url", `https://control.test:${port}`];
    },
  });
  await waitFor("control's certificate from Pebble", servedCert, 60_000);

  // The agent: its own /etc/hosts (control.test → 127.0.0.1) and trust in Pebble's root.
  const dir = mkdtempSync(join(tmpdir(), "tsconnect-acme-agent-"));
  writeFileSync(join(dir, "hosts"), "127.0.0.1 localhost control.test\n");
  const key = net.admin(["keys", "create", "--tags", "tag:server"]).trim().split("\n").pop() ?? "";
  agent = spawn(
    "unshare",
    [
      "--mount",
      "--propagation",
      "private",
      "sh",
      "-c",
      'mount --bind "$0" /etc/hosts && exec "$@"',
      join(dir, "hosts"),
      bin,
      "--socket",
      join(dir, "agent.sock"),
      "up",
      "--ssh",
      "--hostname",
      "alpha",
      "--login-server",
      `https://control.test:${port}`,
      "--auth-key",
      key,
      "--state",
      join(dir, "state"),
    ],
    { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, SSL_CERT_FILE: pebble.root } },
  );
  net.track(agent);

  // The browser: control.test resolves to 127.0.0.1; Pebble's root is trusted in its NSS database.
  home = mkdtempSync(join(tmpdir(), "tsconnect-acme-home-"));
  const nssdb = join(home, ".pki", "nssdb");
  mkdirSync(nssdb, { recursive: true });
  execFileSync("certutil", ["-N", "-d", `sql:${nssdb}`, "--empty-password"]);
  execFileSync("certutil", ["-A", "-d", `sql:${nssdb}`, "-t", "C,,", "-n", "pebble", "-i", pebble.root]);
  browser = await launch({ args: ["--host-resolver-rules=MAP control.test 127.0.0.1"], env: { ...process.env, HOME: home } });
});

after(async () => {
  await browser?.close();
  await net?.stop();
  pebble?.proc.kill();
  if (home) rmSync(home, { recursive: true, force: true });
});

test("a console SSH session goes on across control's certificate renewal", { timeout: 240_000 }, async (t) => {
  const url = `https://control.test:${port}`;
  const context = await browser.newContext({ viewport: { width: 1000, height: 700 } });
  t.after(() => context.close());
  const page = await context.newPage();
  await consoleLogin(page, url, alice);
  await machineRow(page, "alpha").locator(".online").waitFor({ timeout: 30_000 });
  const first = await servedCert();

  const dlg = await openSSHDialog(page, "alpha");
  await dlg.locator('input[name=user][value="root"]').check();
  const [child] = await Promise.all([context.waitForEvent("page"), dlg.getByRole("button", { name: "Connect" }).click()]);
  await waitTerminal(child, /[$#] *$/m, 30_000);
  await child.locator(".xterm-helper-textarea").focus();
  await child.keyboard.type("i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.2; done\n");
  await waitTerminal(child, /^tick 5\s*$/m);
  const lastTick = async () => Math.max(0, ...[...(await terminalText(child)).matchAll(/^tick (\d+)\s*$/gm)].map((m) => Number(m[1])));

  // The renewal: a new certificate, served with a third of the first one's lifetime left.
  const notAfter = new Date(first.valid_to).getTime();
  const second = await waitFor(
    "the renewal",
    async () => {
      const c = await servedCert();
      return c.serialNumber !== first.serialNumber ? c : null;
    },
    150_000,
  );
  const left = (notAfter - Date.now()) / 1000;
  t.diagnostic(`renewed: serial ${first.serialNumber} → ${second.serialNumber}, ${left.toFixed(0)} s before the first expired`);
  assert.ok(left > 0, "renewed only after the first certificate expired");

  // The session printed on across it, and goes on.
  const before = await lastTick();
  await new Promise((r) => setTimeout(r, 2000));
  const after = await lastTick();
  assert.ok(after >= before + 5, `the session stalled across the renewal: tick ${before} then ${after} two seconds later`);
  t.diagnostic(`session ticks: ${before} at the renewal, ${after} two seconds later`);

  // A new session, over connections made after the renewal, works too.
  const dlg2 = await openSSHDialog(page, "alpha");
  await dlg2.locator('input[name=user][value="root"]').check();
  const [child2] = await Promise.all([context.waitForEvent("page"), dlg2.getByRole("button", { name: "Connect" }).click()]);
  await waitTerminal(child2, /[$#] *$/m, 30_000);
});
