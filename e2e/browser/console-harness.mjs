// A network for the console's browser tests: `tsconnect control` on a free loopback port,
// users with passwords, a policy, and SSH agents (`tsconnect up --ssh`) with keys from
// `tsconnect keys create`; plus helpers to drive the console's pages.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bin as defaultBin } from './demo.js';

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

export const alice = { email: 'alice@example.com', password: 'correct horse battery', admin: true };
export const bob = { email: 'bob@example.com', password: 'bob has a password', admin: false };

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Starts a process and resolves once its output matches re (rejects if it exits first). */
function startUntil(args, re, env = {}, what = args[0]) {
  const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: no ${re} in 60 s:\n${out}`)), 60_000);
    let up = false;
    const on = (d) => {
      out += d;
      if (!up && re.test(out)) { up = true; clearTimeout(timer); resolve({ proc, log: () => out }); }
    };
    proc.stdout.on('data', on);
    proc.stderr.on('data', on);
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`${what} exited ${code}:\n${out}`)); });
  });
}

async function stopProc(proc) {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  proc.kill('SIGTERM');
  await new Promise((r) => proc.on('exit', r));
}

/**
 * Starts control with alice (admin) and bob (member), basePolicy, and the agents named in
 * tagged (tag:server, SSH) and plain (alice's, no SSH).
 */
export async function startConsoleNet({ tagged = ['alpha', 'beta'], plain = [] } = {}) {
  if (!existsSync(bin)) throw new Error(`${bin} is missing: run npm run build && go build -o bin/tsconnect ./cmd/tsconnect`);
  const dir = mkdtempSync(join(tmpdir(), 'tsconnect-console-'));
  const state = join(dir, 'control');
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const procs = [];
  const net = {
    url, state, dir,
    /** Runs an admin command against the running control server. */
    admin(args, input) {
      return execFileSync(bin, [...args.slice(0, 2), '--state', state, ...args.slice(2)], { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
    },
    /**
     * Registers an agent (SSH on by default) with a fresh key, tagged or (tags '') owned by
     * user; resolves once it is up, with its local API socket (for `tsconnect --socket`).
     */
    async agent(name, { tags = 'tag:server', ssh = true, user = alice.email } = {}) {
      const keyArgs = ['keys', 'create', ...(tags ? ['--tags', tags] : ['--user', user])];
      const key = net.admin(keyArgs).trim().split('\n').pop();
      const adir = join(dir, `agent-${procs.length}`);
      const socket = join(dir, `agent-${procs.length}.sock`);
      const a = await startUntil(
        ['up', ...(ssh ? ['--ssh'] : []), '--login-server', url, '--auth-key', key, '--hostname', name, '--state', adir],
        /up: node \S+/, { TSCONNECT_SOCKET: socket }, `up ${name}`);
      procs.push(a.proc);
      return { ...a, socket };
    },
    setPolicy(text) {
      const f = join(dir, 'policy.hujson');
      writeFileSync(f, text);
      return net.admin(['policy', 'set', f]);
    },
    /** Machines as the console API lists them, fetched with a fresh login of alice. */
    async machines() {
      const s = await apiLogin(url, alice);
      const r = await fetch(`${url}/api/v1/machines`, { headers: { Cookie: s.cookie } });
      return (await r.json()).machines;
    },
    async stop() {
      for (const p of procs.reverse()) await stopProc(p);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  const control = await startUntil(['control', '--listen', `127.0.0.1:${port}`, '--state', state, '--ephemeral-grace', '3s'],
    /serving /, {}, 'control');
  procs.push(control.proc);
  net.controlLog = control.log;
  try {
    if (!process.env.B_SKIP_USERS) {
      for (const u of [alice, bob]) {
        net.admin(['users', 'create', ...(u.admin ? ['--admin'] : []), '--password-stdin', u.email], u.password + '\n');
      }
    }
    net.setPolicy(basePolicy);
    for (const name of tagged) await net.agent(name);
    for (const name of plain) await net.agent(name, { tags: '', ssh: false });
  } catch (e) {
    await net.stop();
    throw e;
  }
  return net;
}

/** Logs in through the API (Node fetch; Origin set as a browser would). */
export async function apiLogin(url, user) {
  const r = await fetch(`${url}/api/v1/login`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Origin: url },
    body: JSON.stringify({ email: user.email, password: user.password }),
  });
  if (r.status !== 200) throw new Error(`login ${user.email}: HTTP ${r.status} ${await r.text()}`);
  const body = await r.json();
  const cookie = (r.headers.get('set-cookie') || '').split(';')[0];
  return { cookie, csrf: body.csrfToken };
}

/** Logs in through the console's login form and waits for the Machines page. */
export async function consoleLogin(page, url, user) {
  await page.goto(`${url}/admin/`);
  await page.locator('#login-email').fill(user.email);
  await page.locator('#login-password').fill(user.password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.locator('body[data-page="machines"]').waitFor();
}

/** The Machines row of name. */
export function machineRow(page, name) {
  return page.locator(`tr[data-machine="${name}"]`);
}

/** Opens the SSH… dialog of a machine and waits for its user list (or reason). */
export async function openSSHDialog(page, name) {
  await machineRow(page, name).locator('.ssh-button').click();
  const dlg = page.locator('dialog[open]');
  await dlg.locator('input[name=user], .reason, .error:not([hidden])').first().waitFor();
  return dlg;
}
