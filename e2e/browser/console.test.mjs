// The admin console in Chromium against `tsconnect control` with SSH agents on loopback:
// login, Machines (live, escaped), SSH sessions in child windows that only draw (no wasm, no
// scripts), several at once, closing one, the inline fallback when pop-ups are blocked, the
// user picker against the policy, the policy editor, and keys a member may not mint.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { launch, waitTerminal, artifacts, ensureArtifacts } from "./demo.js";
import { startConsoleNet, consoleLogin, machineRow, openSSHDialog, alice, bob, basePolicy, watchPage } from "./console-harness.mjs";

const hostile = "<img src=x onerror=alert(1)>";
let net;
let browser;

before(async () => {
  net = await startConsoleNet({ tagged: ["alpha", "beta"] });
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await net?.stop();
});

/** A fresh context and page that fail the test on page errors, CSP refusals and any dialog (alert). */
async function newPage(t, opts = {}) {
  const context = await browser.newContext({ viewport: { width: 1200, height: 800 }, ...opts });
  t.after(() => context.close());
  const page = await context.newPage();
  const problems = [];
  const watch = watchPage(problems);
  watch(page);
  context.on("page", watch);
  t.after(() => assert.deepEqual(problems, [], "no page errors and no dialogs"));
  return { context, page };
}

/** The session list entry of user@host. */
const sessionItem = (page, label) => page.locator("#sessions li", { has: page.locator(".who", { hasText: label }) });

/** Picks user in the open SSH dialog, clicks Connect and returns the child window's page. */
async function connect(page, context, host, user) {
  const dlg = await openSSHDialog(page, host);
  await dlg.locator(`input[name=user][value="${user}"]`).check();
  const [child] = await Promise.all([context.waitForEvent("page"), dlg.getByRole("button", { name: "Connect" }).click()]);
  return child;
}

test("login, Machines with SSH badges and owners/tags, logout", async (t) => {
  const { page } = await newPage(t);
  await page.goto(`${net.url}/admin/`);
  await page.locator("#login-email").fill(alice.email);
  await page.locator("#login-password").fill("wrong password");
  await page.getByRole("button", { name: "Log in" }).click();
  await page
    .getByRole("alert")
    .filter({ hasText: /wrong email or password/i })
    .waitFor();

  await consoleLogin(page, net.url, alice);
  for (const name of ["alpha", "beta"]) {
    const row = machineRow(page, name);
    await row.waitFor();
    assert.equal(await row.locator(".badge.ssh").textContent(), "SSH");
    assert.equal(await row.locator(".tag").textContent(), "tag:server");
    await row.locator(".online").waitFor();
    assert.match(await row.locator("td.addrs").textContent(), /100\.\d+\.\d+\.\d+/);
  }
  // Admin navigation: every page.
  assert.deepEqual(await page.locator("nav a").allTextContents(), [
    "Machines",
    "Sessions",
    "Recordings",
    "Audit",
    "Access controls",
    "Keys",
    "Users",
  ]);
  ensureArtifacts();
  await page.screenshot({ path: join(artifacts, "console-machines.png") });

  // Live: a new machine shows up without reload.
  await net.agent("gamma");
  await machineRow(page, "gamma").locator(".badge.ssh").waitFor({ timeout: 20_000 });

  await page.getByRole("button", { name: "Log out" }).click();
  await page.locator("#login-email").waitFor();
  const me = await page.evaluate(() => fetch("/api/v1/me").then((r) => r.status));
  assert.equal(me, 401, "logged out for the server too");
});

test("member: Machines and Keys only; a tagged key it does not own is refused", async (t) => {
  const { page } = await newPage(t);
  await consoleLogin(page, net.url, bob);
  assert.deepEqual(await page.locator("nav a").allTextContents(), ["Machines", "Sessions", "Keys"]);
  await machineRow(page, "alpha").waitFor();
  assert.equal(
    await machineRow(page, "alpha")
      .getByRole("button", { name: /Delete/ })
      .count(),
    0,
    "no admin actions for members",
  );

  await page.goto(`${net.url}/admin/#/keys`);
  await page.locator("input[name=tags]").fill("tag:server");
  await page.getByRole("button", { name: "Create key" }).click();
  await page.locator(".error:not([hidden])").filter({ hasText: "tag:server" }).waitFor();
  assert.equal(await page.locator(".secret-value").count(), 0, "no secret shown");

  // An untagged key of his own is fine; the secret is shown once.
  await page.locator("input[name=tags]").fill("");
  await page.getByRole("button", { name: "Create key" }).click();
  const secret = await page.locator(".secret-value").textContent();
  assert.ok(secret && secret.length > 16, "secret shown");
  await page.reload();
  await page.locator("table.keys tbody tr").first().waitFor();
  assert.equal(await page.getByText(secret).count(), 0, "the secret is not shown again");
});

test("admin: users created and deleted, keys created (secret once) and revoked", async (t) => {
  const { page } = await newPage(t);
  await consoleLogin(page, net.url, alice);
  await page.getByRole("link", { name: "Users" }).click();
  await page.locator('tr[data-user="bob@example.com"]').waitFor();
  await page.locator("input[name=email]").fill("carol@example.com");
  await page.locator("select[name=role]").selectOption("member");
  await page.locator("input[name=password]").fill("carol password 1");
  await page.getByRole("button", { name: "Add user" }).click();
  const carol = page.locator('tr[data-user="carol@example.com"]');
  await carol.waitFor();
  assert.match(await carol.textContent(), /member/);
  await carol.getByRole("button", { name: /Delete/ }).click();
  await page.locator("dialog[open]").getByRole("button", { name: "Delete" }).click();
  await carol.waitFor({ state: "detached" });

  await page.getByRole("link", { name: "Keys" }).click();
  await page.locator("input[name=reusable]").check();
  await page.locator("input[name=tags]").fill("tag:server");
  await page.locator("input[name=description]").fill("console test key");
  await page.getByRole("button", { name: "Create key" }).click();
  const secret = await page.locator(".secret-value").textContent();
  assert.match(secret, /^tskey-/);
  const row = page.locator("table.keys tr.new");
  await row.waitFor();
  assert.match(await row.textContent(), /tag:server.*reusable.*valid/);
  await row.getByRole("button", { name: /Revoke/ }).click();
  await page.locator("dialog[open]").getByRole("button", { name: "Revoke" }).click();
  await row.filter({ hasText: "revoked" }).waitFor();
});

test("the user picker offers exactly what the policy allows; without a rule it says why", async (t) => {
  const { page } = await newPage(t);
  await consoleLogin(page, net.url, alice);
  // Keyboard only: focus the SSH… button, Enter opens the dialog with the first user focused.
  await machineRow(page, "alpha").locator(".ssh-button").focus();
  await page.keyboard.press("Enter");
  const dlg = page.locator("dialog[open]");
  await dlg.locator("input[name=user]").first().waitFor();
  assert.equal(await page.evaluate(() => document.activeElement?.getAttribute("name")), "user", "the user choice has the focus");
  const users = await dlg.locator("input[name=user]").evaluateAll((els) => els.map((e) => e.value));
  assert.deepEqual(users.sort(), ["daemon", "root"]);
  assert.equal(
    await dlg
      .locator(".owner-line")
      .textContent()
      .then((s) => s.includes("tag:server")),
    true,
    "the dialog says whose machine it is",
  );
  await page.keyboard.press("Escape");
  await dlg.waitFor({ state: "detached" });

  const b = await newPage(t);
  await consoleLogin(b.page, net.url, bob);
  const bdlg = await openSSHDialog(b.page, "alpha");
  assert.equal(await bdlg.locator("input[name=user]").count(), 0);
  const reason = await bdlg.locator(".reason").textContent();
  assert.match(reason, /bob@example\.com/, `the reason names the user: ${reason}`);
  assert.match(reason, /alpha/, `the reason names the machine: ${reason}`);
  assert.equal(await bdlg.getByRole("button", { name: "Connect" }).isDisabled(), true);
});

test("SSH in child windows: no wasm or scripts there, two at once, closing one ends only it", async (t) => {
  const { page, context } = await newPage(t);
  const childRequests = new Map();
  context.on("request", (r) => {
    let p;
    try {
      p = r.frame().page();
    } catch {
      return;
    } // a Worker's request has no frame
    if (!childRequests.has(p)) childRequests.set(p, []);
    childRequests.get(p).push(r.url());
  });
  await consoleLogin(page, net.url, alice);
  await machineRow(page, "alpha").locator(".online").waitFor();
  const ephemeralBefore = (await net.machines()).filter((m) => m.ephemeral).length;

  const t0 = Date.now();
  const one = await connect(page, context, "alpha", "root");
  await waitTerminal(one, /[$#] *$/m, 30_000);
  t.diagnostic(`click to prompt (first session, wasm compiled in this page): ${Date.now() - t0} ms`);
  assert.equal(new URL(one.url()).pathname, "/admin/term.html");
  assert.equal(await one.title(), "root@alpha");
  await one.locator(".xterm-helper-textarea").focus();
  await one.keyboard.type("echo $((6*7))\n");
  await waitTerminal(one, /^42\s*$/m);

  const t1 = Date.now();
  const two = await connect(page, context, "beta", "root");
  await waitTerminal(two, /[$#] *$/m, 30_000);
  t.diagnostic(`click to prompt (second session, wasm cached): ${Date.now() - t1} ms`);
  assert.equal(await two.title(), "root@beta");
  await sessionItem(page, "root@alpha").locator(".state-connected").waitFor();
  await sessionItem(page, "root@beta").locator(".state-connected").waitFor();
  ensureArtifacts();
  await two.screenshot({ path: join(artifacts, "console-session.png") });
  await page.screenshot({ path: join(artifacts, "console-sessions.png") });

  for (const child of [one, two]) {
    // What Playwright saw the child request, and what the child's own resource timing lists.
    const timing = await child.evaluate(() => performance.getEntriesByType("resource").map((e) => e.name));
    const urls = [...(childRequests.get(child) ?? []), ...timing];
    assert.ok(
      urls.some((u) => /\/assets\/term-[^/]+\.css$/.test(u)),
      `the child loaded its stylesheet: ${urls}`,
    );
    assert.deepEqual(
      urls.filter((u) => /\.wasm(\?|$)/.test(u)),
      [],
      "the child fetched no .wasm",
    );
    assert.deepEqual(
      urls.filter((u) => /\.js(\?|$)/.test(u)),
      [],
      "the child fetched no scripts",
    );
    assert.equal(await child.locator("script").count(), 0, "no script elements in the child");
  }
  // Both sessions run, each with its own ephemeral browser node.
  const during = (await net.machines()).filter((m) => m.ephemeral).length;
  assert.equal(during, ephemeralBefore + 2);

  // Closing the first child ends its session only.
  await one.close();
  await sessionItem(page, "root@alpha").locator(".state-ended").waitFor();
  await two.locator(".xterm-helper-textarea").focus();
  await two.keyboard.type("echo still-$((1+1))\n");
  await waitTerminal(two, /^still-2\s*$/m);
  assert.equal(await sessionItem(page, "root@beta").locator(".state-connected").count(), 1);
  const deadline = Date.now() + 20_000;
  while ((await net.machines()).filter((m) => m.ephemeral).length !== ephemeralBefore + 1) {
    assert.ok(Date.now() < deadline, "the closed session's browser node is gone within 20 s");
    await new Promise((r) => setTimeout(r, 250));
  }

  // Close from the parent's list: the child window goes too.
  await Promise.all([
    two.waitForEvent("close", { timeout: 10_000 }),
    sessionItem(page, "root@beta").getByRole("button", { name: /Close/ }).click(),
  ]);
  await sessionItem(page, "root@beta").locator(".state-ended").waitFor();
});

test("pop-ups blocked: the terminal opens inline with a notice", async (t) => {
  // Headless Chromium has no pop-up blocker (neither --block-new-web-contents nor the pop-ups
  // content setting takes effect there), so the page gets what a blocker gives it: window.open
  // answering null.
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  t.after(() => context.close());
  await context.addInitScript(() => {
    window.open = () => null;
  });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await consoleLogin(page, net.url, alice);
  const dlg = await openSSHDialog(page, "alpha");
  await dlg.locator('input[name=user][value="root"]').check();
  await dlg.getByRole("button", { name: "Connect" }).click();
  const box = page.locator(".inline-term");
  await box
    .locator(".notice")
    .filter({ hasText: /pop-ups are blocked/i })
    .waitFor();
  await waitTerminal(page, /[$#] *$/m, 30_000);
  await page.locator(".inline-term .xterm-helper-textarea").focus();
  await page.keyboard.type("echo $((6*7))\n");
  await waitTerminal(page, /^42\s*$/m);
  assert.equal(context.pages().length, 1, "no window opened");
  await sessionItem(page, "root@alpha").getByRole("button", { name: /Close/ }).click();
  await sessionItem(page, "root@alpha").locator(".state-ended").waitFor();
  assert.deepEqual(errors, []);
});

test("policy editor: an invalid policy shows its line and is not saved; a valid one applies", async (t) => {
  const { page } = await newPage(t);
  await consoleLogin(page, net.url, alice);
  await page.getByRole("link", { name: "Access controls" }).click();
  const text = page.locator("#policy-text");
  await page.locator(".policy-status[data-version]").waitFor();
  const version = Number(await page.locator(".policy-status").getAttribute("data-version"));
  assert.equal(await text.inputValue(), basePolicy);

  // Line 9 gets an unknown action.
  const bad = basePolicy.replace('{"action": "accept", "src": ["alice@', '{"action": "allow", "src": ["alice@');
  const badLine = bad.split("\n").findIndex((l) => l.includes('"allow"')) + 1;
  await text.fill(bad);
  await page.locator(`#policy-problems li[data-line="${badLine}"]`).waitFor();
  assert.match(await page.locator("#policy-problems").textContent(), new RegExp(`Line ${badLine}, column \\d+.*allow`));
  await page.locator(`.gutter .bad[data-line="${badLine}"]`).waitFor();
  ensureArtifacts();
  await page.screenshot({ path: join(artifacts, "console-policy-problem.png") });
  await page.getByRole("button", { name: "Save" }).click();
  await page.locator('.policy-status[data-result="refused"]').waitFor();
  assert.match(await page.locator(".policy-status").textContent(), new RegExp(`Not saved.*Version ${version} stays`));
  const inForce = await page.evaluate(() => fetch("/api/v1/policy").then((r) => r.json()));
  assert.equal(inForce.version, version);
  assert.equal(inForce.text, basePolicy);

  // A valid change applies: alice may now also log in as "nobody".
  const good = basePolicy.replace('"users": ["root", "daemon"]', '"users": ["root", "daemon", "nobody"]');
  await text.fill(good);
  await page.getByRole("button", { name: "Save" }).click();
  await page.locator(`.policy-status[data-result="saved"][data-version="${version + 1}"]`).waitFor();
  await page.getByRole("link", { name: "Machines" }).click();
  const dlg = await openSSHDialog(page, "alpha");
  const users = await dlg.locator("input[name=user]").evaluateAll((els) => els.map((e) => e.value));
  assert.deepEqual(users.sort(), ["daemon", "nobody", "root"]);
  await page.keyboard.press("Escape");

  // Two editors: the page opens version+1, the CLI then writes version+2; the page's save
  // is refused (412) with a clear message, and the CLI's text stays in force.
  await page.getByRole("link", { name: "Access controls" }).click();
  await page.locator(`.policy-status[data-version="${version + 1}"]`).waitFor();
  net.setPolicy(basePolicy);
  await text.fill(good.replace('"nobody"]', '"nobody", "daemon"]'));
  await page.getByRole("button", { name: "Save" }).click();
  await page.locator('.policy-status[data-result="stale"]').waitFor();
  assert.match(
    await page.locator(".policy-status").textContent(),
    new RegExp(`Not saved: someone else saved version ${version + 2} after you opened version ${version + 1}`),
  );
  const after = await page.evaluate(() => fetch("/api/v1/policy").then((r) => r.json()));
  assert.equal(after.version, version + 2);
  assert.equal(after.text, basePolicy);
});

test("a node named like markup is shown as text and runs nothing", async (t) => {
  await net.agent(hostile, { tags: "", ssh: false });
  const { page } = await newPage(t);
  await consoleLogin(page, net.url, alice);
  const machine = (await net.machines()).find((m) => m.owner && !m.ephemeral);
  assert.ok(machine, "the hostile node is registered");
  t.diagnostic(`control named the node ${JSON.stringify(machine.name)}`);
  const row = page.locator(`tr[data-id="${machine.id}"]`);
  await row.waitFor();
  assert.equal(await row.locator(".name").textContent(), machine.name, "the name as the API gives it, as text");
  assert.equal(await page.locator("img").count(), 0, "no img element anywhere");
  // Whatever control made of the name, the page holds it only as text.
  if (machine.name.includes("<")) assert.equal(await row.locator(".name").innerText(), hostile);
  await page.waitForTimeout(300); // an onerror handler would have fired by now (then the dialog check fails)
});
