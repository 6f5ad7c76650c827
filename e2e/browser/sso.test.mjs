// Single sign-on end to end in Chromium: the test OpenID Provider (internal/testop) runs as a
// process and `tsconnect control` signs users in with it (--oidc-*). A new user signs in from
// the console's "Sign in with SSO" through the provider's real login form and lands in the
// console (the SameSite=Strict session cookie set by the callback's meta-refresh page), as a
// member; their provider group maps to a policy group that grants an SSH login, so SSH… gets
// a shell; a user of another group is told why not; a check rule sends them to the provider
// again (prompt=login) from the check window, then the shell appears by itself; a user whose
// email is not verified is refused with a page saying so; a session link signed out comes back to
// its page (and its command) after the provider.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { launch, waitTerminal, artifacts, ensureArtifacts } from "./demo.js";
import { startConsoleNet, startOP, machineRow, openSSHDialog, watchPage } from "./console-harness.mjs";

// Users of the provider (not of control: they appear there on first sign-in).
const erin = { email: "erin@example.com", password: "erin signs in at the IdP", email_verified: true, groups: ["engineering"] };
const sam = { email: "sam@example.com", password: "sam sells", email_verified: true, groups: ["sales"] };
const uma = { email: "uma@example.com", password: "uma is unverified", email_verified: false, groups: ["engineering"] };

// group:eng is whoever the provider puts in "engineering": root on alpha (tag:server) at once,
// root on beta (tag:prod) after a check at the provider every time.
const ssoPolicy = `// single sign-on tests
{
	"groups": {"group:eng": ["idpgroup:engineering"]},
	"tagOwners": {"tag:server": ["alice@example.com"], "tag:prod": ["alice@example.com"]},
	"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}],
	"ssh": [
		{"action": "accept", "src": ["group:eng"], "dst": ["tag:server"], "users": ["root"]},
		{"action": "check", "src": ["group:eng"], "dst": ["tag:prod"], "users": ["root"], "checkPeriod": "always"},
	],
}
`;

let net;
let op;
let browser;
const problems = [];

before(async () => {
  net = await startConsoleNet({
    tagged: ["alpha"],
    async controlArgs(url, n) {
      const secret = randomBytes(24).toString("hex");
      op = await startOP({
        users: [erin, sam, uma],
        client: { id: "tsconnect-console", secret, redirect_uri: `${url}/auth/oidc/callback` },
      });
      n.track(op.proc);
      const secretFile = join(n.dir, "oidc-secret");
      writeFileSync(secretFile, secret + "\n", { mode: 0o600 });
      return ["--oidc-issuer", op.issuer, "--oidc-client-id", "tsconnect-console", "--oidc-client-secret-file", secretFile];
    },
  });
  net.setPolicy(ssoPolicy);
  await net.agent("beta", { tags: "tag:prod" });
  browser = await launch();
});
after(async () => {
  await browser?.close();
  if (process.exitCode) console.error(`control:\n${net?.controlLog()}\ntestop:\n${op?.log()}`);
  await net?.stop();
  assert.deepEqual(problems, [], "no page errors, CSP refusals or dialogs");
});

/** A fresh context whose pages record page errors, CSP refusals and dialogs. */
async function newContext(t) {
  const context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
  t.after(() => context.close());
  const watch = watchPage(problems);
  context.on("page", watch);
  return context;
}

/** Fills and submits the provider's login form on page (which must be showing it). */
async function providerSignIn(page, user) {
  await page.getByRole("heading", { name: "Sign in" }).waitFor();
  assert.equal(new URL(page.url()).origin, op.issuer, "the form is the provider's");
  await page.getByLabel("Email").fill(user.email);
  await page.getByLabel("Password").fill(user.password);
  await page.getByRole("button", { name: "Sign in" }).click();
}

/** From the console's login page: Sign in with SSO → the provider's form → submitted. */
async function ssoFromConsole(page, user) {
  await page.goto(`${net.url}/admin/`);
  const sso = page.getByRole("button", { name: "Sign in with SSO" });
  await sso.waitFor();
  await Promise.all([page.waitForURL((u) => u.origin === op.issuer), sso.click()]);
  await providerSignIn(page, user);
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

/** SSH… → user → Connect; returns the terminal window. */
async function connect(page, context, host, user) {
  const dlg = await openSSHDialog(page, host);
  await dlg.locator(`input[name=user][value="${user}"]`).check();
  const [term] = await Promise.all([context.waitForEvent("page"), dlg.getByRole("button", { name: "Connect" }).click()]);
  await term.waitForLoadState();
  assert.match(term.url(), /\/admin\/term\.html$/);
  return term;
}

async function shellAnswers(term) {
  await waitTerminal(term, /[$#] *$/m, 30_000);
  await term.locator(".xterm-helper-textarea").focus();
  await term.keyboard.type("echo $((6*7))\n");
  await waitTerminal(term, /^42\s*$/m);
}

test("SSO sign-in lands in the console as a new member whose IdP group grants SSH; check re-authenticates at the provider", async (t) => {
  const context = await newContext(t);
  const page = await context.newPage();
  // 1. The callback answers with a page that moves on by meta refresh: the cookie it set is
  // SameSite=Strict, and the console must see it on arrival (no second click, no reload).
  const landed = page.waitForResponse((r) => new URL(r.url()).pathname === "/auth/oidc/callback");
  await ssoFromConsole(page, erin);
  const signedAt = Date.now();
  const cb = await landed;
  assert.equal(cb.status(), 200, "the callback signs erin in");
  await page.locator('body[data-page="machines"]').waitFor();
  t.diagnostic(`provider's Sign in click to the console's Machines page: ${Date.now() - signedAt} ms`);
  assert.equal(new URL(page.url()).pathname, "/admin/");
  assert.equal((await page.locator(".me .who").textContent()).trim(), erin.email);
  assert.equal((await page.locator(".me .badge").textContent()).trim(), "member", "a first sign-in makes a member");
  const cookie = (await context.cookies(net.url)).find((c) => c.name === "tsconnect_session");
  assert.ok(cookie, "session cookie set");
  assert.equal(cookie.sameSite, "Strict");
  assert.equal(cookie.httpOnly, true);
  ensureArtifacts();
  await page.screenshot({ path: join(artifacts, "sso-machines.png") });

  // A member: SSH…, but no admin actions on the machine.
  const row = machineRow(page, "alpha");
  await row.locator(".ssh-button").waitFor();
  for (const name of [/Edit tags of/, /^Expire /, /^Delete /]) {
    assert.equal(await row.getByRole("button", { name }).count(), 0, `no ${name} button for a member`);
  }

  // 2. The provider's "engineering" is group:eng: root on alpha at once, on beta behind a check.
  for (const [host, check] of [
    ["alpha", 0],
    ["beta", 1],
  ]) {
    const dlg = await openSSHDialog(page, host);
    const offered = await dlg.locator("input[name=user]").evaluateAll((xs) => xs.map((x) => x.value));
    assert.deepEqual(offered, ["root"], `erin's logins on ${host}`);
    assert.equal(await dlg.locator("input[value=root]").locator("xpath=..").locator(".badge.check").count(), check);
    await dlg.getByRole("button", { name: "Cancel" }).click();
    await dlg.waitFor({ state: "detached" });
  }

  const term = await connect(page, context, "alpha", "root");
  await shellAnswers(term);
  await term.close();

  // 3. root on beta: the check window opens by itself; erin has no password, so it offers the
  // provider, which must ask again (prompt=login) even though she signed in minutes ago.
  const loginsAtIdP = /signed in for client/g;
  const before = (op.log().match(loginsAtIdP) || []).length;
  const term2 = await connect(page, context, "beta", "root");
  const check = await pageMatching(context, /\/check\/[0-9a-f]+$/);
  await check.waitForLoadState();
  assert.equal(new URL(check.url()).origin, net.url);
  await check.getByRole("heading", { name: "Approve an SSH login?" }).waitFor();
  assert.match(await check.locator("dl").textContent(), /erin@example\.com[\s\S]*beta[\s\S]*root/);
  assert.equal(await check.locator("input[name=password]").count(), 0, "an SSO user has no password to give");
  const reauth = check.getByRole("link", { name: "Re-authenticate with single sign-on" });
  await Promise.all([check.waitForURL((u) => u.origin === op.issuer), reauth.click()]);
  const asked = new URL(check.url());
  assert.equal(asked.searchParams.get("prompt"), "login", "the provider is told to authenticate afresh");
  assert.equal(asked.searchParams.get("max_age"), "0");
  try {
    await providerSignIn(check, erin);
    await check
      .getByText(/Approved/)
      .first()
      .waitFor({ timeout: 15_000 });
  } catch (e) {
    if (!check.isClosed()) throw e; // the console may close the window once the login is in
  }
  assert.equal((op.log().match(loginsAtIdP) || []).length, before + 1, "erin typed her password at the provider again");
  await shellAnswers(term2);
  await term2.close();
});

test("SSO user of another IdP group: signed in, but the SSH dialog says why not", async (t) => {
  const context = await newContext(t);
  const page = await context.newPage();
  await ssoFromConsole(page, sam);
  await page.locator('body[data-page="machines"]').waitFor();
  assert.equal((await page.locator(".me .who").textContent()).trim(), sam.email);
  const dlg = await openSSHDialog(page, "alpha");
  assert.equal(await dlg.locator("input[name=user]").count(), 0);
  const reason = await dlg.locator(".reason").textContent();
  assert.match(reason, /sam@example\.com/);
  assert.match(reason, /alpha/);
});

test("SSO user whose email the provider has not verified is refused with a page saying so", async (t) => {
  const context = await newContext(t);
  const page = await context.newPage();
  const landed = page.waitForResponse((r) => new URL(r.url()).pathname === "/auth/oidc/callback");
  await ssoFromConsole(page, uma);
  assert.equal((await landed).status(), 403);
  await page.getByRole("heading", { name: "Sign-in refused" }).waitFor();
  assert.match(await page.locator("body").textContent(), /email is not verified[\s\S]*uma@example\.com/);
  assert.equal((await context.cookies(net.url)).filter((c) => c.name === "tsconnect_session").length, 0, "no session");
  await page.goto(`${net.url}/admin/`);
  await page.locator("#login-email").waitFor();
  assert.doesNotMatch(net.admin(["users", "list"]), /uma@example\.com/, "uma was not created");
});

test("a session link signed out: Sign in with SSO at the provider, back on the link's page, its command runs after Run", async (t) => {
  const context = await newContext(t);
  const page = await context.newPage();
  // Long enough that the sign-in's return path cannot carry it: the tab keeps it meanwhile.
  const cmd = `echo sso-link-$((6*7)) #${"x".repeat(1200)}`;
  await page.goto(`${net.url}/ssh/root@alpha?cmd=${encodeURIComponent(cmd)}`);
  await page.locator(".link-note").waitFor();
  const sso = page.getByRole("button", { name: "Sign in with SSO" });
  await sso.waitFor();
  await Promise.all([page.waitForURL((u) => u.origin === op.issuer), sso.click()]);
  await providerSignIn(page, erin);
  await page.locator('body[data-page="ssh"]').waitFor({ timeout: 30_000 });
  assert.equal(await page.locator(".ssh-link pre.link-cmd").textContent(), cmd);
  await page.getByRole("button", { name: "Run" }).click();
  await page.locator(".ssh-link .xterm-rows").filter({ hasText: "sso-link-42" }).waitFor({ timeout: 60_000 });
});
