// Check mode from the browser console and from OpenSSH, against `tsconnect control` with an
// SSH agent on loopback: a held login's check page opens in a window (or, when a pop-up
// blocker refuses, behind a link in the terminal's window), approving with the password lets
// the session into the shell by itself, a second login within the check period goes straight
// in, after the period it asks again, and declining puts the refusal into the terminal.
// OpenSSH through `tsconnect nc` prints the URL; a scripted Chromium approves it.
// Also: the login page offers single sign-on when the server has an identity provider.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { execFileSync } from "node:child_process";
import { writeFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { launch, waitTerminal, terminalText, artifacts, ensureArtifacts } from "./demo.js";
import { startConsoleNet, consoleLogin, openSSHDialog, alice, bob, bin, watchPage, findNode } from "./console-harness.mjs";

/** The check period of root@alpha; the policy allows no less than a minute. */
const periodMs = 60_000;

// alice: root under a 1-minute check, daemon re-checked on every login; bob: root, always.
const checkPolicy = `// check mode tests
{
	"tagOwners": {"tag:server": ["alice@example.com"]},
	"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}],
	"ssh": [
		{"action": "check", "src": ["alice@example.com"], "dst": ["tag:server"], "users": ["root"], "checkPeriod": "1m"},
		{"action": "check", "src": ["alice@example.com"], "dst": ["tag:server"], "users": ["daemon"], "checkPeriod": "always"},
		{"action": "check", "src": ["bob@example.com"], "dst": ["tag:server"], "users": ["root"], "checkPeriod": "always"},
	],
}
`;

let net;
let browser;
let bobNode;
/** alice's console: one context and page for the whole file (each console login is an authentication). */
let ctx;
let page;
/** When alice last authenticated successfully (console login, approved check). */
let aliceAuthAt = 0;
const problems = [];

before(async () => {
  net = await startConsoleNet({ tagged: ["alpha"] });
  net.setPolicy(checkPolicy);
  bobNode = await net.agent("bobs-laptop", { tags: "", ssh: false, user: bob.email });
  browser = await launch();
  ctx = await browser.newContext({ viewport: { width: 1200, height: 800 } });
  // A pop-up blocker as browsers have one (headless Chromium has none): window.open works only
  // with a fresh user activation, and a window it opens uses that activation up.
  await ctx.addInitScript(() => {
    const open = window.open;
    let spent = true;
    const fresh = (e) => {
      if (e.isTrusted) spent = false;
    };
    addEventListener("pointerdown", fresh, true);
    addEventListener("keydown", fresh, true);
    window.open = function (...args) {
      if (globalThis.popupBlocker && (spent || !navigator.userActivation.isActive)) return null;
      spent = true;
      return open.apply(this, args);
    };
  });
  const watch = watchPage(problems);
  ctx.on("page", watch);
  page = await ctx.newPage();
});
after(async () => {
  await browser?.close();
  if (process.exitCode) console.error(net?.controlLog());
  await net?.stop();
  assert.deepEqual(problems, [], "no page errors, CSP refusals or dialogs");
});

/** Pages that open in alice's context from now on. */
function pagesFrom(context) {
  const opened = [];
  const on = (p) => opened.push(p);
  context.on("page", on);
  return { opened, stop: () => context.off("page", on) };
}

/** Waits for a page of the context whose URL matches re (already open or opening). */
async function pageMatching(context, re, timeout = 30_000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const p = context.pages().find((x) => re.test(x.url()));
    if (p) return p;
    if (Date.now() > deadline) throw new Error(`no page at ${re}; open: ${context.pages().map((x) => x.url())}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const sessionItem = (label) => page.locator("#sessions li", { has: page.locator(".who", { hasText: label }) });

/** SSH… → user → Connect from alice's console; returns the terminal window. */
async function connect(user) {
  await page.bringToFront();
  const dlg = await openSSHDialog(page, "alpha");
  const choice = dlg.locator(`input[name=user][value="${user}"]`);
  assert.equal(await choice.locator("xpath=..").locator(".badge.check").count(), 1, `${user} is marked as a check login`);
  await choice.check();
  const [term] = await Promise.all([ctx.waitForEvent("page"), dlg.getByRole("button", { name: "Connect" }).click()]);
  await term.waitForLoadState();
  assert.match(term.url(), /\/admin\/term\.html$/);
  return term;
}

/** Approves a check page with the user's password and returns its answer page's text. */
async function approve(check, user) {
  await check.locator("input[name=password]").fill(user.password);
  await submit(check, "Approve");
}

/** Clicks a check page's button; the console may close its window as soon as the login is decided. */
async function submit(check, name) {
  try {
    await check.getByRole("button", { name }).click();
  } catch (e) {
    if (!check.isClosed()) throw e;
  }
}

/** Waits until the terminal's text, its rows joined (long lines wrap), matches re. */
async function waitTerminalFlat(term, re, timeout = 20_000) {
  const deadline = Date.now() + timeout;
  let text = "";
  while (Date.now() < deadline) {
    text = (await terminalText(term)).replace(/\n/g, "");
    if (re.test(text)) return text;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`terminal never matched ${re}; it shows:\n${await terminalText(term)}`);
}

/** Types in the terminal window and waits for the output. */
async function shellAnswers(term) {
  await waitTerminal(term, /[$#] *$/m, 30_000);
  await term.locator(".xterm-helper-textarea").focus();
  await term.keyboard.type("echo $((6*7))\n");
  await waitTerminal(term, /^42\s*$/m);
}

/** Closes a session from its window and waits until the console lists it as ended. */
async function closeSession(term, label) {
  await sessionItem(label).getByRole("button", { name: /Close/ }).click();
  await sessionItem(label).locator(".state-ended").waitFor();
  if (!term.isClosed()) await term.waitForEvent("close");
  await sessionItem(label).getByRole("button", { name: "Dismiss" }).click();
}

test("login page: single sign-on offered only when the server has an identity provider", async (t) => {
  const context = await browser.newContext();
  t.after(() => context.close());
  const p = await context.newPage();
  const asked = p.waitForResponse(/\/api\/v1\/auth-methods$/);
  await p.goto(`${net.url}/admin/`);
  await p.locator("#login-email").waitFor();
  assert.deepEqual(await (await asked).json(), { password: true, oidc: null }, "this control server has no provider");
  await p.evaluate(() => new Promise((r) => setTimeout(r, 0)));
  assert.equal(await p.getByRole("button", { name: "Sign in with SSO" }).count(), 0);

  // The same page, told that the server has a provider (the server's own OIDC flow is tested in Go).
  const p2 = await context.newPage();
  await p2.route("**/api/v1/auth-methods", (r) =>
    r.fulfill({
      contentType: "application/json",
      body: JSON.stringify({ password: true, oidc: { issuer: "https://id.example.com/realms/x", startURL: "/auth/oidc/start" } }),
    }),
  );
  await p2.goto(`${net.url}/admin/#/keys`);
  const sso = p2.getByRole("button", { name: "Sign in with SSO" });
  await sso.waitFor();
  assert.match(await p2.locator("form.login .sso").textContent(), /id\.example\.com/);
  await Promise.all([p2.waitForURL(/\/auth\/oidc\/start/), sso.click()]);
  const u = new URL(p2.url());
  assert.equal(u.searchParams.get("returnTo"), "/admin/#/keys");
  // This server has no provider, so its start page says so.
  assert.match(await p2.locator("body").textContent(), /no identity provider/i);
});

test("check window opens, Decline puts the refusal into the terminal", async () => {
  await consoleLogin(page, net.url, alice);
  aliceAuthAt = Date.now();
  const term = await connect("daemon");
  // The banner's URL on control's origin opens by itself (pop-ups allowed for the site).
  const check = await pageMatching(ctx, /\/check\/[0-9a-f]+$/);
  await check.waitForLoadState();
  assert.equal(new URL(check.url()).origin, net.url);
  await check.getByRole("heading", { name: "Approve an SSH login?" }).waitFor();
  assert.match(await check.locator("dl").textContent(), /alice@example\.com[\s\S]*alpha[\s\S]*daemon/);
  ensureArtifacts();
  await check.screenshot({ path: join(artifacts, "check-page.png") });
  assert.equal(await check.evaluate(() => window.opener), null, "the check window has no handle on the console");
  await term.locator('#status[data-check="opened"]').waitFor();
  await waitTerminalFlat(term, /re-authenticate as alice@example\.com\. Visit: http:\/\/127\.0\.0\.1:\d+\/check\/[0-9a-f]+/);

  await submit(check, "Decline");
  const text = await waitTerminalFlat(term, /declined the login/);
  assert.match(text, /login as "daemon" refused/);
  await sessionItem("daemon@alpha").locator(".state-failed").waitFor();
  await term.locator('#status[data-state="failed"]').waitFor();
  assert.equal(await term.locator("#status .check-link").count(), 0, "no link once decided");
  await sessionItem("daemon@alpha").getByRole("button", { name: "Dismiss" }).click();
  await term.close();
  if (!check.isClosed()) await check.waitForEvent("close", { timeout: 5_000 }).catch(() => check.close());
});

test("OpenSSH through tsconnect nc prints the URL; approving it in a browser lets ssh in", async (t) => {
  const home = mkdtempSync(join(tmpdir(), "tsconnect-check-ssh-"));
  t.after(() => rmSync(home, { recursive: true, force: true }));
  const st = JSON.parse(execFileSync(bin, ["--socket", bobNode.socket, "status", "--json"], { encoding: "utf8" }));
  const alpha = findNode(st, "alpha");
  assert.ok(alpha?.sshHostKeys?.length, "bob's node sees alpha's host keys");
  const kh = join(home, "known_hosts");
  writeFileSync(kh, alpha.sshHostKeys.map((k) => `alpha ${k}\n`).join(""));
  const ssh = spawn(
    "ssh",
    [
      "-F",
      "/dev/null",
      "-o",
      `ProxyCommand=${bin} --socket ${bobNode.socket} nc %h %p`,
      "-o",
      "BatchMode=yes",
      "-o",
      "StrictHostKeyChecking=yes",
      "-o",
      `UserKnownHostsFile=${kh}`,
      "-o",
      "GlobalKnownHostsFile=/dev/null",
      "root@alpha",
      "echo ok",
    ],
    { env: { ...process.env, HOME: home }, stdio: ["ignore", "pipe", "pipe"] },
  );
  t.after(() => {
    if (ssh.exitCode === null) ssh.kill();
  });
  let out = "";
  let err = "";
  ssh.stdout.on("data", (d) => {
    out += d;
  });
  ssh.stderr.on("data", (d) => {
    err += d;
  });
  const exited = new Promise((r) => ssh.on("exit", (code) => r(code)));
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no check URL on ssh's stderr in 30 s:\n${err}`)), 30_000);
    const on = () => {
      const m = err.match(/re-authenticate as bob@example\.com\. Visit: (http:\/\/\S+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    ssh.stderr.on("data", on);
    ssh.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`ssh exited ${code} before the banner:\n${err}`));
    });
  });
  assert.equal(new URL(url).origin, net.url, "the URL is on the control server");
  assert.equal(ssh.exitCode, null, "ssh waits");

  // Bob opens it in a browser (no console session) and approves with his password.
  const context = await browser.newContext();
  t.after(() => context.close());
  const p = await context.newPage();
  await p.goto(url);
  assert.match(await p.locator("dl").textContent(), /bob@example\.com[\s\S]*bobs-laptop[\s\S]*alpha[\s\S]*root/);
  await approve(p, bob);
  await p
    .getByText(/Approved/)
    .first()
    .waitFor();
  assert.equal(await exited, 0, `ssh exit code (stderr: ${err})`);
  assert.equal(out, "ok\n");
});

test("pop-ups blocked altogether: inline terminal, the link in its status line, then the shell", async (t) => {
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  t.after(() => context.close());
  await context.addInitScript(() => {
    window.open = () => null;
  });
  const p = await context.newPage();
  p.on("pageerror", (e) => problems.push(`pageerror: ${e}`));
  await consoleLogin(p, net.url, bob);
  const dlg = await openSSHDialog(p, "alpha");
  await dlg.locator('input[name=user][value="root"]').check();
  await dlg.getByRole("button", { name: "Connect" }).click();
  const box = p.locator(".inline-term");
  const link = box.locator('.term-status[data-check="blocked"] .check-link');
  await link.waitFor({ timeout: 30_000 });
  assert.equal(await link.textContent(), "Re-authenticate as bob@example.com");
  await p.locator('#sessions li[data-check="blocked"] .check-link').waitFor();
  const [check] = await Promise.all([context.waitForEvent("page"), link.click()]);
  await check.waitForLoadState();
  assert.match(check.url(), /\/check\/[0-9a-f]+$/);
  await approve(check, bob);
  await waitTerminal(p, /[$#] *$/m, 30_000);
  await p.locator(".inline-term .xterm-helper-textarea").focus();
  await p.keyboard.type("echo $((6*7))\n");
  await waitTerminal(p, /^42\s*$/m);
  assert.equal(await box.locator(".check-link").count(), 0, "the link goes once the login is in");
});

test("within the check period no window; after it, asked again; a blocked pop-up gives a link", async (t) => {
  // The first login must come after alice's period ran out (her console login counts).
  const wait = aliceAuthAt + periodMs + 2_000 - Date.now();
  if (wait > 0) {
    t.diagnostic(`waiting ${Math.round(wait / 1000)} s for alice's 1-minute check period to run out`);
    await new Promise((r) => setTimeout(r, wait));
  }

  // 1. A pop-up blocker refuses the check window (it is not opened in a click): the terminal's
  // window says so with a link, which opens the check page.
  await page.evaluate(() => {
    globalThis.popupBlocker = true;
  });
  const term1 = await connect("root");
  const link = term1.locator('#status[data-check="blocked"] .check-link');
  await link.waitFor({ timeout: 30_000 });
  assert.equal(await link.textContent(), "Re-authenticate as alice@example.com");
  assert.equal(ctx.pages().filter((x) => /\/check\//.test(x.url())).length, 0, "no check window opened by itself");
  assert.equal(await sessionItem("root@alpha").getAttribute("data-check"), "blocked");
  ensureArtifacts();
  await term1.screenshot({ path: join(artifacts, "check-blocked-terminal.png") });
  const [check1] = await Promise.all([ctx.waitForEvent("page"), link.click()]);
  await check1.waitForLoadState();
  assert.match(check1.url(), /\/check\/[0-9a-f]+$/);
  await approve(check1, alice);
  aliceAuthAt = Date.now();
  await check1
    .getByText(/Approved/)
    .first()
    .waitFor();
  // The session goes on by itself: no click in the terminal window.
  await shellAnswers(term1);
  await term1.locator('#status[data-state="connected"]').waitFor();
  assert.equal(await term1.locator("#status .check-link").count(), 0);
  await check1.close();
  await page.evaluate(() => {
    globalThis.popupBlocker = false;
  });
  await closeSession(term1, "root@alpha");

  // 2. Within the period: straight to the prompt, no check page, no banner.
  const watch = pagesFrom(ctx);
  const term2 = await connect("root");
  await shellAnswers(term2);
  watch.stop();
  assert.deepEqual(
    watch.opened.map((x) => new URL(x.url()).pathname),
    ["/admin/term.html"],
    "only the terminal window opened",
  );
  assert.doesNotMatch(await terminalText(term2), /re-authenticate/);
  assert.ok(Date.now() < aliceAuthAt + periodMs, "the second login came within the period");
  await closeSession(term2, "root@alpha");

  // 3. After the period: asked again; the window opens by itself and closes once approved.
  const left = aliceAuthAt + periodMs + 2_000 - Date.now();
  t.diagnostic(`waiting ${Math.round(left / 1000)} s for the period to run out again`);
  await new Promise((r) => setTimeout(r, Math.max(0, left)));
  const term3 = await connect("root");
  const check3 = await pageMatching(ctx, /\/check\/[0-9a-f]+$/);
  await check3.waitForLoadState();
  await term3.locator('#status[data-check="opened"]').waitFor();
  const approvedAt = Date.now();
  await approve(check3, alice);
  await waitTerminal(term3, /[$#] *$/m, 30_000);
  t.diagnostic(`approve click to shell prompt: ${Date.now() - approvedAt} ms`);
  await shellAnswers(term3);
  if (!check3.isClosed()) await check3.waitForEvent("close", { timeout: 10_000 });
  await closeSession(term3, "root@alpha");
});
