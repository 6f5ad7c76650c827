// The console's Recordings page in Chromium, against a real agent and a real `tsconnect
// recorder`: sessions from the browser (the console's SSH window) and from real OpenSSH
// (through `tsconnect nc`) are listed; the player plays one and the frame read back at a seek
// point holds what the session showed then; a live session shows new output within about a
// second; a member the policy does not let watch gets a refusal and no list. The page reads
// the recorder over its own node (ipn.dial), never through control.
import assert from "node:assert/strict";
import { test } from "node:test";
import { alice, bob, consoleLogin, consoleSuite, recorderPolicy, openSSHDialog, opensshVia } from "./console-harness.mjs";
import { waitTerminal } from "./demo.js";

const s = consoleSuite({ tagged: ["alpha"], plain: [] });

/** The Recordings page, once its list has loaded (rows or "No recordings."). */
async function openRecordings(page) {
  await page.goto(`${s.net.url}/admin/#/recordings`);
  await page.locator('body[data-page="recordings"]').waitFor();
}

/** The text rows of the player's terminal. */
const rows = (page) => page.$eval(".player .xterm-rows", (el) => [...el.children].map((r) => r.textContent?.trimEnd() ?? ""));

test("a member not allowed gets a refusal, no list", async (t) => {
  const { page } = await s.page(t);
  s.net.setPolicy(recorderPolicy);
  await consoleLogin(page, s.net.url, bob);
  assert.ok(!(await page.locator("nav a").allTextContents()).includes("Recordings"), "no Recordings page in bob's menu");
  await openRecordings(page);
  await page
    .getByRole("alert")
    .filter({ hasText: "You may not watch recordings: bob@example.com is a member the policy's recordingViewers does not name" })
    .waitFor();
  assert.equal(await page.locator(".recordings tbody tr").count(), 0);
  assert.equal(await page.locator(".recordings form.filters").isHidden(), true);
});

test("sessions from the browser and from OpenSSH are listed, played, seeked and watched live", async (t) => {
  s.net.setPolicy(recorderPolicy);
  await s.net.recorder("rec");
  const { context, page } = await s.page(t);
  await consoleLogin(page, s.net.url, alice);
  assert.ok((await page.locator("nav a").allTextContents()).includes("Recordings"), "alice (an admin) has the Recordings page");

  // A session from real OpenSSH, through a plain agent of alice's (`tsconnect nc`).
  const laptop = await s.net.agent("laptop", { tags: "", ssh: false });
  const ssh = await opensshVia(s.net, laptop, "alpha", "root", "echo from-openssh-$((2*21)); sleep 2; echo later-$((5*5))");
  assert.equal(ssh.status, 0, ssh.stderr);
  const sshOut = ssh.stdout;
  assert.match(sshOut, /from-openssh-42/);

  // A session from the browser, left running (live).
  const dlg = await openSSHDialog(page, "alpha");
  await dlg.locator('input[name=user][value="root"]').check();
  const [term] = await Promise.all([context.waitForEvent("page"), dlg.getByRole("button", { name: "Connect" }).click()]);
  await waitTerminal(term, /[$#] *$/m, 30_000);
  await term.locator(".xterm-helper-textarea").focus();
  await term.keyboard.type("echo first-$((3*5))\n");
  await waitTerminal(term, /^first-15\s*$/m);

  await openRecordings(page);
  const list = page.locator(".recordings tbody tr[data-id]");
  await list.nth(1).waitFor({ timeout: 30_000 });
  assert.equal(await list.count(), 2);
  const liveRow = list.filter({ has: page.locator(".badge.live") });
  assert.equal(await liveRow.count(), 1, "the browser session is live");
  const done = list.filter({ hasNot: page.locator(".badge.live") });
  assert.deepEqual(
    await done
      .locator("td")
      .allTextContents()
      .then((c) => c.slice(1, 5)),
    ["alice@example.com", "laptop", "alpha", "root"],
  );

  // Filters: by machine and by user.
  await page.locator(".filter-user").fill("carol@example.com");
  await page.getByRole("button", { name: "Search" }).click();
  await page.locator(".recordings td.empty").waitFor();
  await page.locator(".filter-user").fill("alice@example.com");
  await page.locator(".filter-machine").fill("alpha");
  await page.getByRole("button", { name: "Search" }).click();
  await list.nth(1).waitFor();

  // Play the OpenSSH one; then seek as a user drags the slider: the frame at 1 s has the first
  // line and not the one printed 2 s later; at the end, both.
  await done.locator("button.play").click();
  await page.waitForFunction(() => document.querySelector(".player .xterm-rows")?.textContent?.includes("from-openssh-42"), null, {
    timeout: 10_000,
  });
  await page.waitForFunction(() => Number(/** @type {HTMLInputElement} */ (document.querySelector(".player-seek")).max) >= 2);
  const seek = (/** @type {number} */ v) =>
    page.$eval(
      ".player-seek",
      (el, v) => {
        const input = /** @type {HTMLInputElement} */ (el);
        input.value = String(v);
        input.dispatchEvent(new Event("input"));
      },
      v,
    );
  await page.getByRole("button", { name: "Pause" }).click();
  await seek(1);
  await page.waitForTimeout(300); // the frame is drawn (xterm renders on the next frame)
  let frame = (await rows(page)).join("\n");
  assert.match(frame, /from-openssh-42/, `frame at 1 s: ${frame}`);
  assert.doesNotMatch(frame, /later-25/, `frame at 1 s: ${frame}`);
  const max = Number(await page.$eval(".player-seek", (el) => /** @type {HTMLInputElement} */ (el).max));
  await seek(max);
  await page.waitForTimeout(300);
  frame = (await rows(page)).join("\n");
  assert.match(frame, /later-25/, `frame at the end: ${frame}`);

  // Watch the browser session live: new output shows within about a second.
  await liveRow.locator("button.play").click();
  await page.locator(".player .badge.live:not([hidden])").waitFor();
  await page.waitForFunction(() => document.querySelector(".player .xterm-rows")?.textContent?.includes("first-15"), null, {
    timeout: 10_000,
  });
  await term.keyboard.type("echo second-$((4*5))\n");
  await waitTerminal(term, /^second-20\s*$/m);
  const t0 = Date.now();
  await page.waitForFunction(() => document.querySelector(".player .xterm-rows")?.textContent?.includes("second-20"), null, {
    timeout: 5_000,
  });
  const took = Date.now() - t0;
  t.diagnostic(`live output on the Recordings page ${took} ms after the terminal showed it`);
  assert.ok(took < 1500, `live output took ${took} ms`);
});
