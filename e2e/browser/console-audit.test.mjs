// The console's Audit page in Chromium, against real agents and a real `tsconnect recorder`:
// logins from real OpenSSH (through `tsconnect nc`) that the agent accepts (recorded) and
// refuses show as rows with who, from which node, as which local user and why; the filters
// (user, machine, date, action) narrow them; the recording link opens the Recordings page's
// player on that recording; the export link serves the log as JSON lines; a member gets no page.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { test } from "node:test";
import { alice, bin, bob, consoleLogin, consoleSuite, recorderPolicy, opensshVia } from "./console-harness.mjs";

const s = consoleSuite({ tagged: ["alpha"], plain: [] });

/** The page's rows (not the empty line). */
const rowsOf = (/** @type {import("playwright-core").Page} */ page) => page.locator(".audit tbody tr[data-id]");

/** Sets the filters (those not in f cleared) and searches; resolves once the list is redrawn. */
async function search(/** @type {import("playwright-core").Page} */ page, /** @type {Record<string, string>} */ f) {
  for (const n of ["user", "machine", "from", "to"]) await page.locator(`.filter-${n}`).fill(f[n] ?? "");
  await page.locator(".filter-action").selectOption(f.action ?? "");
  await page.evaluate(() => {
    const st = document.querySelector(".audit [role=status]");
    if (st) st.textContent = "";
  });
  await page.getByRole("button", { name: "Search" }).click();
  await page
    .locator(".audit [role=status]")
    .filter({ hasText: /events read/ })
    .waitFor();
}

/** The local day of d as a date input takes it. */
const day = (/** @type {Date} */ d) =>
  `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;

test("a member gets no Audit page", async (t) => {
  const { page } = await s.page(t);
  s.net.setPolicy(recorderPolicy);
  await consoleLogin(page, s.net.url, bob);
  assert.ok(!(await page.locator("nav a").allTextContents()).includes("Audit"), "no Audit page in bob's menu");
  await page.goto(`${s.net.url}/admin/#/audit`);
  await page.getByRole("alert").filter({ hasText: "Audit is for admins; you are a member." }).waitFor();
  assert.equal(await page.locator(".audit").count(), 0);
  const status = await page.evaluate(() => fetch("/api/v1/audit").then((r) => r.status));
  assert.equal(status, 403, "the API refuses bob too");
});

test("OpenSSH logins show with who, where, as whom and why; filters narrow; the recording opens", async (t) => {
  s.net.setPolicy(recorderPolicy);
  await s.net.recorder("rec");
  const laptop = await s.net.agent("laptop", { tags: "", ssh: false });
  // alpha records to rec once its map has it (else the session goes on unrecorded).
  const alphaSees = () =>
    /"name":\s*"rec[".]/.test(execFileSync(bin, ["--socket", s.net.agents.alpha.socket, "status", "--json"], { encoding: "utf8" }));
  for (let i = 0; i < 100 && !alphaSees(); i++) await new Promise((r) => setTimeout(r, 200));
  assert.ok(alphaSees(), "alpha's map has the recorder");
  const ok = await opensshVia(s.net, laptop, "alpha", "root", "echo audit-$((6*7))");
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /audit-42/);
  const refused = await opensshVia(s.net, laptop, "alpha", "daemon", "echo never");
  assert.notEqual(refused.status, 0, "daemon is not in alice's rule");
  assert.doesNotMatch(refused.stdout, /never/);

  const { page } = await s.page(t);
  await consoleLogin(page, s.net.url, alice);
  assert.ok((await page.locator("nav a").allTextContents()).includes("Audit"), "alice (an admin) has the Audit page");
  await page.goto(`${s.net.url}/admin/#/audit`);
  await page.locator('body[data-page="audit"]').waitFor();
  // The agent reports through a queue, in order: search again until the refusal (its last) is in.
  const end = rowsOf(page).and(page.locator('[data-kind="ssh-end"]'));
  const reject = rowsOf(page).and(page.locator('[data-kind="ssh-reject"]'));
  for (let i = 0; i < 60 && (await reject.count()) === 0; i++) {
    await page.waitForTimeout(500);
    await search(page, {});
  }
  const accept = rowsOf(page).and(page.locator('[data-kind="ssh-accept"]'));
  assert.equal(await end.count(), 1, "one session ended");
  assert.equal(await accept.count(), 1, "one login accepted");
  assert.ok((await reject.count()) >= 1, "the daemon login refused");
  const cells = async (/** @type {import("playwright-core").Locator} */ row) =>
    Object.fromEntries(
      await Promise.all(
        ["action", "who", "src", "dst", "as", "why", "session", "recording"].map(async (c) => [
          c,
          (await row.locator(`td.${c}`).textContent())?.trim(),
        ]),
      ),
    );
  const a = await cells(accept);
  assert.equal(a.action, "Accept");
  assert.equal(a.who, "alice@example.com");
  assert.equal(a.src, "laptop");
  assert.equal(a.dst, "alpha");
  assert.equal(a.as, "root");
  assert.ok(a.why, "an accept says why");
  assert.equal(a.recording, "", "the recording starts after the accept: its end names it");
  const e = await cells(end);
  assert.match(e.session ?? "", /^exit 0, \d+ s$/);
  assert.equal(e.recording, "Recording");
  const r = await cells(reject.first());
  assert.match(r.action ?? "", /^Reject/);
  assert.equal(r.who, "alice@example.com");
  assert.equal(r.src, "laptop");
  assert.equal(r.dst, "alpha");
  assert.match(`${r.as} ${r.why}`, /daemon/, "the refusal names the local user asked for");
  assert.equal(r.recording, "", "no recording for a refused login");

  // Filters narrow the list: by action, by machine, by user, by date.
  await search(page, { action: "reject" });
  assert.ok((await rowsOf(page).count()) >= 1);
  assert.deepEqual([...new Set(await rowsOf(page).evaluateAll((rs) => rs.map((r) => r.getAttribute("data-kind"))))], ["ssh-reject"]);
  await search(page, { machine: "alpha", action: "accept" });
  assert.deepEqual(await rowsOf(page).evaluateAll((rs) => rs.map((r) => r.getAttribute("data-kind"))), ["ssh-accept"]);
  await search(page, { machine: "no-such-machine" });
  await page.locator(".audit td.empty").filter({ hasText: "No events." }).waitFor();
  await search(page, { user: "bob@" });
  const bobs = await rowsOf(page).locator("td.who").allTextContents();
  assert.ok(bobs.length >= 1, "bob's console sign-in of the first test");
  assert.ok(
    bobs.every((w) => w === "bob@example.com"),
    `only bob's events: ${bobs}`,
  );
  await search(page, {});
  const all = await rowsOf(page).count();
  const tomorrow = new Date(Date.now() + 86400_000);
  await search(page, { from: day(tomorrow) });
  assert.equal(await rowsOf(page).count(), 0, "nothing from tomorrow on");
  await search(page, { from: day(new Date()), to: day(new Date()) });
  assert.equal(await rowsOf(page).count(), all, "everything is from today");

  // The export link: the log as JSON lines, the accepted login with its recording among them.
  const href = await page.locator("a.audit-export").getAttribute("href");
  assert.match(href ?? "", /^\/api\/v1\/audit\/export\?since=/);
  const exported = await page.evaluate(async (u) => {
    const res = await fetch(u);
    return { type: res.headers.get("content-type"), text: await res.text() };
  }, /** @type {string} */ (href));
  assert.equal(exported.type, "application/x-ndjson");
  const lines = exported.text
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
  assert.ok(
    lines.some((l) => l.kind === "ssh-accept" && l.ssh?.dstName === "alpha" && l.ssh?.localUser === "root"),
    "the export has the accept",
  );
  const ended = lines.find((l) => l.kind === "ssh-end");
  assert.ok(ended?.ssh?.recording, "the export has the session's end with its recording id");

  // The recording link opens the Recordings page's player on that recording.
  await search(page, { action: "end" });
  const link = rowsOf(page).locator("a.recording-link");
  assert.equal(await link.getAttribute("href"), `#/recordings?id=${encodeURIComponent(ended.ssh.recording)}`);
  await link.click();
  await page.locator('body[data-page="recordings"]').waitFor();
  assert.equal(new URL(page.url()).hash, `#/recordings?id=${encodeURIComponent(ended.ssh.recording)}`);
  await page.waitForFunction(() => document.querySelector(".player .xterm-rows")?.textContent?.includes("audit-42"), null, {
    timeout: 30_000,
  });
  assert.match((await page.locator(".player-box h2").textContent()) ?? "", /alice@example\.com on alpha as root/);
});
