// The key bar on a phone (issue 19, part 4), in Chromium's mobile emulation (390×844, touch)
// on the demo page, through the whole path to a real shell: the bar shows under the terminal
// and fits the viewport; taps on its keys (touch events) reach the remote as the bytes a
// keyboard would send, Ctrl then C from the keyboard interrupts a command, ↑ recalls the last
// one; with a mouse and no touch screen there is no bar.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { homedir } from "node:os";
import { startDemo, launch, waitTerminal } from "./demo.js";

let demo;
let browser;

before(async () => {
  demo = await startDemo({ grace: "5s" });
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await demo?.stop();
});

const phone = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 3, isMobile: true, hasTouch: true };

/** Taps the bar's key named name. */
async function tap(page, name) {
  await page.locator(`.tsconnect-keybar button[aria-label="${name}"]`).tap();
}

test("a phone gets a key bar that fits, and its keys combine with the keyboard", async (t) => {
  const context = await browser.newContext(phone);
  t.after(() => context.close());
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(demo.url);
  await waitTerminal(page, /[$#] *$/m, 30_000);

  const bar = page.locator(".tsconnect-keybar");
  await bar.waitFor();
  assert.deepEqual(await bar.locator("button").allTextContents(), ["Esc", "Tab", "Ctrl", "Alt", "←", "↑", "↓", "→", "|", "~", "/"]);
  // It fits the phone: inside the viewport, under the terminal, no sideways scrolling.
  const b = await bar.boundingBox();
  const term = await page.locator(".xterm-screen").boundingBox();
  assert.ok(b.x >= 0 && b.x + b.width <= 390 && b.y + b.height <= 844, `bar at ${JSON.stringify(b)}`);
  assert.ok(term.y + term.height <= b.y + 1, `terminal ${JSON.stringify(term)} overlaps the bar ${JSON.stringify(b)}`);
  assert.ok(term.width > 300, `terminal ${term.width} px wide`);
  assert.ok((await page.evaluate(() => document.documentElement.scrollWidth)) <= 390, "no horizontal scroll");
  for (const k of await bar.locator("button").all()) {
    const kb = await k.boundingBox();
    assert.ok(kb.height >= 30 && kb.width >= 24, `key ${await k.textContent()} big enough to tap: ${JSON.stringify(kb)}`);
    assert.ok(kb.x >= 0 && kb.x + kb.width <= 390, `key ${await k.textContent()} on screen, no scrolling: ${JSON.stringify(kb)}`);
  }

  const textarea = page.locator(".xterm-helper-textarea");
  await textarea.focus();
  // Esc, Tab and Alt+x from the bar, z from the keyboard: the remote reads exactly those bytes.
  await page.keyboard.type('IFS= read -r x; printf %s "$x" | od -An -tx1\n');
  await tap(page, "Escape");
  await tap(page, "Tab");
  await tap(page, "Alt");
  await page.keyboard.type("x");
  await page.keyboard.type("z\n");
  await waitTerminal(page, /^\s*1b 09 1b 78 7a\s*$/m);
  assert.equal(
    await page.evaluate(() => document.activeElement?.className),
    "xterm-helper-textarea",
    "taps keep the focus on the terminal",
  );

  // Ctrl then c interrupts; ↑ recalls the last command.
  await page.keyboard.type("sleep 60\n");
  await tap(page, "Control");
  assert.equal(await bar.locator('button[aria-label="Control"]').getAttribute("aria-pressed"), "true");
  await page.keyboard.type("c");
  assert.equal(await bar.locator('button[aria-label="Control"]').getAttribute("aria-pressed"), "false", "Ctrl applies once");
  await page.keyboard.type("echo status=$?\n");
  await waitTerminal(page, /^status=130\s*$/m);
  await tap(page, "Up");
  await page.keyboard.type("\n");
  await waitTerminal(page, /^status=0\s*$/m);

  // | ~ / from the bar.
  await page.keyboard.type("echo ");
  await tap(page, "Tilde");
  await tap(page, "Slash");
  await page.keyboard.type(" ");
  await tap(page, "Pipe");
  await page.keyboard.type(" tr a-z A-Z\n");
  const home = (process.env.HOME || homedir()).toUpperCase();
  await waitTerminal(page, new RegExp(`^${home.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}/\\s*$`, "m"));
  assert.deepEqual(errors, []);
});

test("no key bar with a mouse and no touch screen", async (t) => {
  const context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
  t.after(() => context.close());
  const page = await context.newPage();
  await page.goto(await demo.takeURL());
  await waitTerminal(page, /[$#] *$/m, 30_000);
  assert.equal(await page.locator(".tsconnect-keybar").count(), 0);
});
