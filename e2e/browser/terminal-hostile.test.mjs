// Hostile terminal output in the browser: what the remote machine prints cannot write the
// clipboard (OSC 52), follow a hidden link without the user confirming its real target
// (OSC 8), or retitle the page (OSC 0/2).
import { test } from "node:test";
import assert from "node:assert/strict";
import { startDemo, launch, waitTerminal } from "./demo.js";

test("remote OSC 52, OSC 8 and title sequences take no effect without the user", async (t) => {
  const demo = await startDemo();
  t.after(() => demo.stop());
  const browser = await launch();
  t.after(() => browser.close());
  const context = await browser.newContext();
  const origin = new URL(demo.url).origin;
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin });
  const page = await context.newPage();
  await page.goto(demo.url);
  await waitTerminal(page, /[$#] *$/m);
  const title = await page.title();
  await page.evaluate(() => navigator.clipboard.writeText("clipboard before"));

  await page.locator(".xterm-helper-textarea").focus();
  // OSC 52 (set the clipboard to "pwned"), a title change, then an OSC 8 link whose text hides its target.
  await page.keyboard.type(
    String.raw`printf '\033]52;c;cHduZWQ=\007\033]0;Bank login\007\033]2;Bank login\007\033]8;;http://127.0.0.1:9/evil\033\\CLICKME\033]8;;\033\\ done\n'` +
      "\n",
  );
  await waitTerminal(page, /CLICKME done/);

  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), "clipboard before", "the remote wrote the clipboard");
  assert.equal(await page.title(), title, "the remote retitled the page");

  // Clicking the link asks first, naming the real target and the session; dismissed, nothing opens.
  const dialogs = [];
  page.on("dialog", (d) => {
    dialogs.push({ type: d.type(), text: d.message() });
    d.dismiss();
  });
  const popups = [];
  context.on("page", (p) => popups.push(p.url()));
  const box = await page.evaluate(() => {
    // The on-screen rectangle of the link's text (not the echoed command line).
    for (const row of document.querySelectorAll(".xterm-rows > div")) {
      if (!row.textContent.includes("CLICKME done")) continue;
      const walker = document.createTreeWalker(row, NodeFilter.SHOW_TEXT);
      for (let n = walker.nextNode(); n; n = walker.nextNode()) {
        const i = (n.textContent ?? "").indexOf("CLICKME");
        if (i < 0) continue;
        const range = document.createRange();
        range.setStart(n, i + 2);
        range.setEnd(n, i + 3);
        const r = range.getBoundingClientRect();
        return { x: r.left + r.width / 2, y: r.top + r.height / 2 };
      }
    }
    return null;
  });
  assert.ok(box, "the link text is on the screen");
  await page.mouse.move(box.x, box.y);
  await page.waitForTimeout(200);
  await page.mouse.click(box.x, box.y);
  const deadline = Date.now() + 5000;
  while (dialogs.length === 0 && Date.now() < deadline) await page.waitForTimeout(50);
  assert.equal(dialogs.length, 1, "clicking the OSC 8 link asked nothing");
  assert.equal(dialogs[0].type, "confirm");
  assert.match(dialogs[0].text, /http:\/\/127\.0\.0\.1:9\/evil/, "the question names the real target");
  assert.match(dialogs[0].text, /remote machine/, "the question says where the link comes from");
  await page.waitForTimeout(500);
  assert.deepEqual(popups, [], "a dismissed link opened a page");
});
