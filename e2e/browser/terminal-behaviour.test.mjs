// The browser terminal behaves like a good terminal, read back from what xterm.js drew in
// .xterm-rows on the demo page (a real shell over the real path): UTF-8 split across output
// chunks, wide characters and emoji, 256-colour and truecolour, mouse reporting, bracketed
// paste, and a resize storm while output streams.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startDemo, launch, waitTerminal, terminalText } from "./demo.js";

/** Types a command line and waits for want on the screen; clears the screen first. */
async function run(page, line, want, timeout = 20_000) {
  await page.keyboard.type("clear\n");
  await waitTerminal(page, /^[^\n]*[$#] *(\n *)*$/);
  await page.keyboard.type(line + "\n");
  return waitTerminal(page, want, timeout);
}

/** str as printf escapes of its UTF-8 bytes (typing non-ASCII into a page goes another way). */
const bytes = (str) => Array.from(Buffer.from(str, "utf8"), (b) => `\\x${b.toString(16).padStart(2, "0")}`).join("");

/** The on-screen centre of the character at index i of the first row containing text. */
function cellOf(page, text, i) {
  return page.evaluate(
    ([text, i]) => {
      const rows = Array.from(document.querySelectorAll(".xterm-rows > div"));
      // The last such row: the command line that printed it may contain the text too.
      const row = rows.filter((r) => (r.textContent ?? "").replace(/\u00a0/g, " ").includes(text)).pop();
      if (!row) return null;
      const at = (row.textContent ?? "").replace(/\u00a0/g, " ").indexOf(text) + i;
      const walker = document.createTreeWalker(row, NodeFilter.SHOW_TEXT);
      let seen = 0;
      for (let n = walker.nextNode(); n; n = walker.nextNode()) {
        const len = (n.textContent ?? "").length;
        if (at < seen + len) {
          const range = document.createRange();
          range.setStart(n, at - seen);
          range.setEnd(n, at - seen + 1);
          const r = range.getBoundingClientRect();
          return { x: r.left + r.width / 2, y: r.top + r.height / 2, left: r.left, row: rows.indexOf(row) };
        }
        seen += len;
      }
      return null;
    },
    [text, i],
  );
}

test("the browser terminal renders and reports like a good terminal", async (t) => {
  const demo = await startDemo();
  t.after(() => demo.stop());
  const browser = await launch();
  t.after(() => browser.close());
  const context = await browser.newContext({ viewport: { width: 1000, height: 640 } });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: new URL(demo.url).origin });
  const page = await context.newPage();
  await page.goto(demo.url);
  await waitTerminal(page, /[$#] *$/m);
  await page.locator(".xterm-helper-textarea").focus();

  await t.test("UTF-8 split across output chunks", async () => {
    // € (e2 82 ac) and 😀 (f0 9f 98 80) cut mid-character across writes 0.3 s apart.
    const text = await run(
      page,
      String.raw`printf '\xe2\x82'; sleep 0.3; printf '\xac\xf0\x9f'; sleep 0.3; printf '\x98\x80 \xc3'; sleep 0.3; printf '\xa9 spl''it\n'`,
      /split/,
    );
    assert.match(text, /€😀 é split/);
    assert.doesNotMatch(text, /\ufffd/, "a split character drew as U+FFFD");
  });

  await t.test("wide (CJK) characters take two cells each", async () => {
    await run(page, `printf '${bytes("W:漢字テスト|\nE:😀😀🎉🚀👍|\nA:0123456789|")}\\n'`, /A:0123456789\|/);
    const ascii = await cellOf(page, "A:0123456789|", 12);
    const wide = await cellOf(page, "W:漢字テスト|", 7);
    assert.ok(ascii && wide, "rows not on screen");
    assert.ok(Math.abs(wide.left - ascii.left) < 2, `'|' after 5 CJK characters at x=${wide.left}, after 10 ASCII at x=${ascii.left}`);
  });

  await t.test("emoji take two cells each, as the remote's wcwidth counts them (Unicode 11 widths)", async () => {
    const ascii = await cellOf(page, "A:0123456789|", 12);
    assert.ok(ascii);
    // The emoji row: its bar sits after 5 emoji (single code points of East Asian Width W) = 10 cells.
    const bar = await page.evaluate(() => {
      const row = Array.from(document.querySelectorAll(".xterm-rows > div")).find((r) => (r.textContent ?? "").startsWith("E:"));
      if (!row) return null;
      const walker = document.createTreeWalker(row, NodeFilter.SHOW_TEXT);
      for (let n = walker.nextNode(); n; n = walker.nextNode()) {
        const i = (n.textContent ?? "").indexOf("|");
        if (i < 0) continue;
        const range = document.createRange();
        range.setStart(n, i);
        range.setEnd(n, i + 1);
        return range.getBoundingClientRect().left;
      }
      return null;
    });
    assert.ok(bar !== null, "no bar in the emoji row");
    assert.ok(Math.abs(bar - ascii.left) < 2, `'|' after 5 emoji at x=${bar}, after 10 ASCII at x=${ascii.left}`);
  });

  await t.test("256-colour and truecolour cells", async () => {
    await run(
      page,
      String.raw`printf '\e[38;5;196mRED256\e[0m \e[38;2;10;200;30mTRUEFG\e[0m \e[48;2;1;2;250mTRUEBG\e[0m \e[38;5;21;1mBLUE''BOLD\e[0m\n'`,
      /BLUEBOLD/,
    );
    const style = await page.evaluate(() => {
      /** @type {Record<string, {color: string, background: string, weight: string}>} */
      const out = {};
      for (const row of document.querySelectorAll(".xterm-rows > div")) {
        if ((row.textContent ?? "").includes("printf")) continue; // the command line
        for (const span of row.querySelectorAll("span")) {
          const s = getComputedStyle(span);
          out[(span.textContent ?? "").trim()] = { color: s.color, background: s.backgroundColor, weight: s.fontWeight };
        }
      }
      return out;
    });
    assert.equal(style.RED256?.color, "rgb(255, 0, 0)", "256-colour index 196");
    assert.equal(style.TRUEFG?.color, "rgb(10, 200, 30)", "truecolour foreground");
    assert.equal(style.TRUEBG?.background, "rgb(1, 2, 250)", "truecolour background");
    assert.equal(style.BLUEBOLD?.color, "rgb(0, 0, 255)", "256-colour index 21");
    assert.ok(Number(style.BLUEBOLD?.weight) >= 600, `bold drew with weight ${style.BLUEBOLD?.weight}`);
  });

  await t.test("mouse reporting (SGR 1006) reaches a program that turned it on", async () => {
    // The program turns on button reporting in SGR format and prints the report it reads.
    await page.keyboard.type("clear\n");
    await waitTerminal(page, /^[^\n]*[$#] *(\n *)*$/);
    await page.keyboard.type(
      String.raw`echo CLICK-TA''RGET-X; printf '\e[?1000h\e[?1006h'; stty raw -echo; IFS= read -r -d M -t 15 m; IFS= read -r -d m -t 15 r; stty sane; printf '\e[?1000l\e[?1006l'; printf 'GO''T[%s][%s]\n' ` +
        '"${m#?}" "${r#?}"' +
        "\n",
    );
    await waitTerminal(page, /^CLICK-TARGET-X/m);
    await page.waitForTimeout(300); // the modes are on once printf ran
    const cell = await cellOf(page, "CLICK-TARGET-X", 13);
    assert.ok(cell, "the target is not on screen");
    await page.mouse.click(cell.x, cell.y);
    const text = await waitTerminal(page, /GOT\[/);
    const m = text.match(/GOT\[\[<(\d+);(\d+);(\d+)\]\[\[<(\d+);(\d+);(\d+)\]/);
    assert.ok(m, `no SGR mouse press and release read:\n${text}`);
    assert.equal(Number(m[1]), 0, "button 1 press");
    assert.equal(Number(m[2]), 14, "column of the X (1-based)");
    assert.equal(Number(m[3]), cell.row + 1, "row of the X (1-based)");
    assert.deepEqual([m[4], m[5], m[6]], ["0", m[2], m[3]], "the release, at the same cell");
  });

  await t.test("bracketed paste: a program that asks gets the paste bracketed", async () => {
    await page.keyboard.type("clear\n");
    await waitTerminal(page, /^[^\n]*[$#] *(\n *)*$/);
    await page.keyboard.type(
      String.raw`printf '\e[?2004h'; stty raw -echo; IFS= read -r -d '~' -t 15 a; IFS= read -r -d '~' -t 15 b; stty sane; printf '\e[?2004l'; printf 'P1[%s] P2[%s] D''ONE\n' ` +
        '"${a#?}" "${b%?????}"' +
        "\n",
    );
    await page.waitForTimeout(500);
    await page.evaluate(() => {
      const dt = new DataTransfer();
      dt.setData("text/plain", "pasted text; rm -rf nothing");
      document
        .querySelector(".xterm-helper-textarea")
        ?.dispatchEvent(new ClipboardEvent("paste", { clipboardData: dt, bubbles: true, cancelable: true }));
    });
    const text = await waitTerminal(page, /DONE/);
    assert.match(text, /P1\[\[200\] P2\[pasted text; rm -rf nothing\] DONE/, "the paste was not wrapped in ESC[200~ … ESC[201~");
  });

  await t.test("a resize storm while output streams loses and garbles no line; the final size is right", async () => {
    const n = 400;
    await page.keyboard.type("clear\n");
    await waitTerminal(page, /^[^\n]*[$#] *(\n *)*$/);
    await page.keyboard.type(`for i in $(seq 1 ${n}); do printf 'L%04d-abcdefghij\\n' $i; sleep 0.005; done; echo STR''EAMED\n`);
    const sizes = [
      [700, 400],
      [1100, 700],
      [520, 360],
      [900, 500],
      [640, 640],
      [1000, 420],
    ];
    for (let i = 0; i < 24; i++) {
      const [w, h] = sizes[i % sizes.length];
      await page.setViewportSize({ width: w, height: h });
      await page.waitForTimeout(60);
    }
    await page.setViewportSize({ width: 1000, height: 640 });
    await waitTerminal(page, /^STREAMED/m, 60_000);
    // Read the whole scrollback back, a page at a time (Shift+PageUp / Shift+PageDown scroll the view).
    const seen = new Map();
    const collect = async () => {
      for (const line of (await terminalText(page)).split("\n")) {
        const m = line.match(/^L(\d{4})/);
        if (m) seen.set(Number(m[1]), line.trimEnd());
      }
    };
    await collect();
    for (let i = 0; i < 60 && !seen.has(1); i++) {
      await page.keyboard.press("Shift+PageUp");
      await page.waitForTimeout(40);
      await collect();
    }
    for (let i = 0; i < 60; i++) {
      await page.keyboard.press("Shift+PageDown");
      await page.waitForTimeout(20);
      await collect();
    }
    const bad = [];
    for (let i = 1; i <= n; i++) {
      const want = `L${String(i).padStart(4, "0")}-abcdefghij`;
      if (seen.get(i) !== want) bad.push(`${i}: ${JSON.stringify(seen.get(i))}`);
    }
    assert.deepEqual(bad, [], "lines lost or garbled");
    // The PTY's size is the terminal's: as many rows as drawn; a line of exactly `stty size`
    // columns fills one row, and one more character wraps to the next.
    const text = await run(
      page,
      `c=$(stty size | cut -d' ' -f2); printf 'SIZE %s\\n' "$(stty size)"; head -c $c /dev/zero | tr '\\0' a; echo; head -c $((c+1)) /dev/zero | tr '\\0' b; echo; echo EN''D`,
      /^END/m,
    );
    const size = text.match(/^SIZE (\d+) (\d+)/m);
    assert.ok(size, text);
    const [rows, cols] = [Number(size[1]), Number(size[2])];
    const drawnRows = await page.evaluate(() => document.querySelector(".xterm-rows")?.children.length ?? 0);
    assert.equal(rows, drawnRows, "rows: stty size against the rows drawn");
    const lines = text.split("\n").map((l) => l.trimEnd());
    const full = lines.findIndex((l) => /^a+$/.test(l));
    assert.equal(lines[full]?.length, cols, `a line of ${cols} characters (stty's columns) fills exactly one row`);
    const over = full + 1; // the cursor waits at the margin: the newline adds no empty row
    assert.deepEqual([lines[over]?.length, lines[over + 1]], [cols, "b"], `a line of ${cols + 1} wraps after ${cols}`);
    assert.equal(lines[over + 2], "END");
  });
});
