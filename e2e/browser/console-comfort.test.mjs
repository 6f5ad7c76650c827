// Terminal comfort (issue 19, part 5), in Chromium against `tsconnect control` and a real agent:
// the console's terminal settings (font size, theme) are kept per user in the browser and
// apply to open and new terminals; the "system" theme follows prefers-color-scheme live; the
// bundled font (Cascadia Mono) draws the text and the box-drawing characters; Ctrl+Shift+F
// finds in the scrollback ("n of m", Enter steps); Ctrl+Shift+Plus makes the text bigger and is
// remembered.
import { test } from "node:test";
import assert from "node:assert/strict";
import { consoleSuite, consoleLogin, openSSHDialog, alice, bob } from "./console-harness.mjs";
import { waitTerminal } from "./demo.js";

const suite = consoleSuite({ tagged: ["alpha"] });

/** SSH… alpha as root; resolves with the terminal window once a prompt shows. */
async function openTerm(page, context) {
  const dlg = await openSSHDialog(page, "alpha");
  await dlg.locator('input[name=user][value="root"]').check();
  const [term] = await Promise.all([context.waitForEvent("page"), dlg.getByRole("button", { name: "Connect" }).click()]);
  await term.waitForLoadState();
  await waitTerminal(term, /[$#] *$/m, 60_000);
  await term.locator(".xterm-helper-textarea").focus();
  return term;
}

/** The terminal's font size (px) and background color as drawn in its window. */
function looks(term) {
  return term.evaluate(() => ({
    fontSize: parseFloat(getComputedStyle(/** @type {Element} */ (document.querySelector(".xterm-rows"))).fontSize),
    fontFamily: getComputedStyle(/** @type {Element} */ (document.querySelector(".xterm-rows"))).fontFamily,
    background: getComputedStyle(/** @type {Element} */ (document.querySelector(".xterm-scrollable-element"))).backgroundColor,
  }));
}

async function saveSettings(page, { fontSize, theme }) {
  await page.getByRole("button", { name: "Terminal…" }).click();
  const dlg = page.locator("dialog[open]");
  await dlg.getByLabel("Font size (px)").fill(String(fontSize));
  await dlg.locator(`input[name=theme][value="${theme}"]`).check();
  await dlg.getByRole("button", { name: "Save" }).click();
  await dlg.waitFor({ state: "detached" }).catch(() => {});
}

test("settings per user in the browser: font size and theme, applied live and to new terminals", async (t) => {
  const { context, page } = await suite.page(t);
  await consoleLogin(page, suite.net.url, alice);
  const term = await openTerm(page, context);
  // Defaults: 15 px, the system's theme (headless Chromium: light), the bundled font.
  await term.emulateMedia({ colorScheme: "light" });
  let l = await looks(term);
  assert.equal(l.fontSize, 15);
  assert.match(l.fontFamily, /Cascadia Mono/);
  assert.equal(l.background, "rgb(255, 255, 255)");
  // The system going dark turns the terminal dark, live.
  await term.emulateMedia({ colorScheme: "dark" });
  await term.waitForFunction(
    () => getComputedStyle(/** @type {Element} */ (document.querySelector(".xterm-scrollable-element"))).backgroundColor === "rgb(0, 0, 0)",
  );

  await saveSettings(page, { fontSize: 20, theme: "light" });
  await term.waitForFunction(
    () => parseFloat(getComputedStyle(/** @type {Element} */ (document.querySelector(".xterm-rows"))).fontSize) === 20,
  );
  l = await looks(term);
  assert.equal(l.background, "rgb(255, 255, 255)", "light chosen: white even with the system dark");

  // Kept in this browser for alice: a reload, a new terminal.
  await page.reload();
  await page.locator('body[data-page="machines"]').waitFor();
  const term2 = await openTerm(page, context);
  l = await looks(term2);
  assert.equal(l.fontSize, 20);
  assert.equal(l.background, "rgb(255, 255, 255)");

  // Per user: bob in the same browser profile has the defaults.
  await page.getByRole("button", { name: "Log out" }).click();
  await page.locator("#login-email").fill(bob.email);
  await page.locator("#login-password").fill(bob.password);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.locator('body[data-page="machines"]').waitFor();
  await page.getByRole("button", { name: "Terminal…" }).click();
  const dlg = page.locator("dialog[open]");
  assert.equal(await dlg.getByLabel("Font size (px)").inputValue(), "15");
  assert.equal(await dlg.locator("input[name=theme]:checked").getAttribute("value"), "system");
});

test("the bundled font draws text and box drawing; Ctrl+Shift+F finds in the scrollback; Ctrl+Shift+Plus is remembered", async (t) => {
  const { context, page } = await suite.page(t);
  await consoleLogin(page, suite.net.url, alice);
  const term = await openTerm(page, context);
  await term.keyboard.type("printf '\\342\\224\\214\\342\\224\\200\\342\\224\\220 box\\n'\n");
  await waitTerminal(term, /^┌─┐ box\s*$/m, 20_000);
  // The font faces that drew: Cascadia Mono's Latin and its box-drawing subset (U+2500-259F).
  const faces = () =>
    term.evaluate(() =>
      Array.from(document.fonts)
        .filter((f) => f.family.replace(/"/g, "") === "Cascadia Mono" && f.status === "loaded")
        .map((f) => f.unicodeRange),
    );
  const deadline = Date.now() + 10_000;
  while (!(await faces()).some((r) => /U\+2500-259F/i.test(r)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  const loaded = await faces();
  assert.ok(
    loaded.some((r) => /^U\+0-FF,/i.test(r)),
    `Latin face loaded: ${loaded}`,
  );
  assert.ok(
    loaded.some((r) => /U\+2500-259F/i.test(r)),
    `box-drawing face loaded: ${loaded}`,
  );
  await term.keyboard.type("seq 1 300 | sed 's/^/line-/'\n");
  await waitTerminal(term, /^line-300\s*$/m, 20_000);

  await term.keyboard.press("Control+Shift+F");
  const find = term.getByRole("searchbox", { name: "Find in the terminal" });
  await find.waitFor();
  assert.equal(await term.evaluate(() => document.activeElement?.getAttribute("aria-label")), "Find in the terminal");
  await find.fill("line-1");
  const count = term.locator(".tsconnect-find-count");
  // line-1, line-10..19, line-100..199: 111 lines hold "line-1".
  await count.filter({ hasText: / of 111$/ }).waitFor();
  const first = await count.textContent();
  await find.press("Enter");
  await count.filter({ hasNotText: first }).waitFor();
  assert.match(await count.textContent(), /^\d+ of 111$/);
  await find.fill("no-such-text");
  await count.filter({ hasText: "No matches" }).waitFor();
  await find.press("Escape");
  assert.equal(await term.evaluate(() => document.activeElement?.className), "xterm-helper-textarea", "Escape gives the focus back");

  const before = (await looks(term)).fontSize;
  await term.keyboard.press("Control+Shift+Equal");
  await term.waitForFunction(
    (b) => parseFloat(getComputedStyle(/** @type {Element} */ (document.querySelector(".xterm-rows"))).fontSize) === b + 1,
    before,
  );
  const saved = await page.evaluate(() =>
    JSON.parse(localStorage.getItem(Object.keys(localStorage).find((k) => k.startsWith("tsconnect.terminal.")) ?? "") ?? "{}"),
  );
  assert.equal(saved.fontSize, before + 1, "kept for the next terminals");
});
