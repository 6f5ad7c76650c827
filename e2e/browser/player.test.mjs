// The Recordings page's player (web/src/console/player.ts) in Chromium: it starts playing a
// recording before the download has finished, the frame read back (.xterm-rows) at a seek
// point shows what the screen held then, speed scales time, and a live recording shows new
// output within a second. The .cast comes from a loopback HTTP server here, streamed as the
// recorder streams it (chunked, held open while "recording"); the overlay path to a real
// recorder is the page's (recordings.ts) and waits for ipn.dial.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { test, before, after } from "node:test";
import * as esbuild from "esbuild";
import { launch, root } from "./demo.js";

const header = JSON.stringify({
  version: 2,
  width: 60,
  height: 10,
  timestamp: 1764739860,
  srcUser: "alice@example.com",
  srcNode: "laptop",
  localUser: "root",
});
/** A session: one step a second, each line saying which, cleared at step 4. */
const events = [
  [0.0, "o", "$ step 0\r\n"],
  [1.0, "o", "step 1\r\n"],
  [2.0, "o", "step 2\r\n"],
  [3.0, "o", "step 3\r\n"],
  [4.0, "o", "\x1b[2J\x1b[Hcleared at 4\r\n"],
  [5.0, "o", "step 5\r\n"],
];
const line = (/** @type {unknown[]} */ e) => JSON.stringify(e) + "\n";

/** @type {import("node:http").Server} */
let server;
/** @type {import("playwright-core").Browser} */
let browser;
let base = "";
/**
 * The held-open live answer, to write to, and who waits for it.
 * @type {{ res: import("node:http").ServerResponse | undefined, waiting: (() => void)[] }}
 */
const live = { res: undefined, waiting: [] };
/** Lets /cast/slow finish. */
let holdRest = () => {};

before(async () => {
  const bundle = await esbuild.build({
    stdin: {
      contents: `import "@xterm/xterm/css/xterm.css";
        import { Player } from "./web/src/console/player.ts";
        window.play = async (url) => {
          const r = await fetch(url);
          const p = new Player({ body: r.body, live: r.headers.get("tsconnect-live") === "1" });
          document.body.append(p.el);
          window.player = p;
        };`,
      resolveDir: root,
      loader: "ts",
    },
    bundle: true,
    write: false,
    outdir: "/out",
    format: "esm",
    logLevel: "error",
  });
  const files = Object.fromEntries(bundle.outputFiles.map((f) => [f.path.replace("/out/", "/"), f.text]));
  /** @type {Record<string, string>} */
  const byPath = files;
  server = createServer((req, res) => {
    const url = req.url ?? "";
    if (url === "/") {
      res.writeHead(200, { "Content-Type": "text/html" });
      res.end('<!doctype html><link rel="stylesheet" href="/stdin.css"><body><script type="module" src="/stdin.js"></script></body>');
    } else if (byPath[url]) {
      res.writeHead(200, { "Content-Type": url.endsWith(".css") ? "text/css" : "text/javascript" });
      res.end(byPath[url]);
    } else if (url === "/cast/slow") {
      // The first two events at once, the rest only when the test says.
      res.writeHead(200, { "Content-Type": "application/x-asciicast" });
      res.write(header + "\n" + events.slice(0, 2).map(line).join(""));
      new Promise((r) => (holdRest = () => r(undefined))).then(() => res.end(events.slice(2).map(line).join("")));
    } else if (url === "/cast/live") {
      res.writeHead(200, { "Content-Type": "application/x-asciicast", "Tsconnect-Live": "1" });
      res.write(header + "\n" + line([0, "o", "live session\r\n"]));
      live.res = res;
      live.waiting.forEach((w) => w());
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", () => r(undefined)));
  base = `http://127.0.0.1:${/** @type {import("node:net").AddressInfo} */ (server.address()).port}`;
  browser = await launch();
});

after(async () => {
  live.res?.end();
  holdRest?.();
  await browser?.close();
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
});

/** The terminal's visible text, row by row. @param {import("playwright-core").Page} page */
const rows = (page) => page.$eval(".xterm-rows", (el) => [...el.children].map((r) => r.textContent?.trimEnd() ?? ""));

/**
 * Waits (up to 3 s) for the terminal's first rows to read want: write callbacks fire when the
 * output is parsed, and the renderer draws it on the next animation frame.
 * @param {import("playwright-core").Page} page @param {string[]} want @param {string} what
 */
async function expectRows(page, want, what) {
  const ok = await page
    .waitForFunction(
      (w) => {
        const el = document.querySelector(".xterm-rows");
        const r = el ? [...el.children].map((c) => c.textContent?.trimEnd() ?? "") : [];
        return w.every((x, i) => r[i] === x);
      },
      want,
      { timeout: 3000 },
    )
    .then(
      () => true,
      () => false,
    );
  const r = await rows(page);
  assert.ok(ok, `${what}: ${JSON.stringify(r)}`);
  assert.deepEqual(r.slice(0, want.length), want, `${what}: ${JSON.stringify(r)}`);
}

test("plays before the download ends, seeks to the frame of that time, and speeds up", async () => {
  const page = await browser.newPage();
  await page.goto(base + "/");
  await page.evaluate((u) => /** @type {any} */ (window).play(u), base + "/cast/slow");
  // Playing already: step 1 shows (at 1 s) while the rest has not been sent.
  await page.waitForFunction(() => document.querySelector(".xterm-rows")?.textContent?.includes("step 1"), null, { timeout: 5000 });
  assert.equal(await page.evaluate(() => /** @type {any} */ (window).player.loading), true, "the download is still going");
  holdRest();
  await page.waitForFunction(() => !(/** @type {any} */ (window).player.loading) && /** @type {any} */ (window).player.duration === 5);
  // Seek to 2.5 s: the screen as it was then (steps 0–2, not 3).
  await page.evaluate(async () => {
    /** @type {any} */ (window).player.pause();
    await /** @type {any} */ (window).player.seek(2.5);
  });
  await expectRows(page, ["$ step 0", "step 1", "step 2", ""], "frame at 2.5 s");
  assert.match(await page.$eval(".player-time", (el) => el.textContent), /^0:02 \/ 0:05/);
  // Seek to 4.5 s: after the clear.
  await page.evaluate(() => /** @type {any} */ (window).player.seek(4.5));
  await expectRows(page, ["cleared at 4", ""], "frame at 4.5 s");
  // Back to 0 at 4×: steps 1-3 (3 s of recording) take under a second.
  await page.evaluate(async () => {
    await /** @type {any} */ (window).player.seek(0);
    /** @type {any} */ (window).player.setSpeed(4);
  });
  const t0 = Date.now();
  await page.evaluate(() => /** @type {any} */ (window).player.play());
  await page.waitForFunction(() => document.querySelector(".xterm-rows")?.textContent?.includes("step 3"), null, { timeout: 5000 });
  const took = Date.now() - t0;
  assert.ok(took >= 600 && took < 1500, `3 s of recording at 4× took ${took} ms`);
  // The slider goes as far as the recording; Play/Pause says which.
  assert.equal(await page.$eval(".player-seek", (el) => /** @type {HTMLInputElement} */ (el).max), "5");
  await page.click(".player-play");
  assert.equal(await page.$eval(".player-play", (el) => el.getAttribute("aria-label")), "Play");
  await page.close();
});

test("a live recording shows the Live badge and new output within a second", async () => {
  const page = await browser.newPage();
  await page.goto(base + "/");
  await page.evaluate((u) => /** @type {any} */ (window).play(u), base + "/cast/live");
  await page.waitForFunction(() => document.querySelector(".xterm-rows")?.textContent?.includes("live session"), null, { timeout: 5000 });
  assert.equal(await page.$eval(".badge.live", (el) => !(/** @type {HTMLElement} */ (el).hidden)), true, "Live badge shown");
  if (!live.res) await new Promise((r) => live.waiting.push(() => r(undefined)));
  const res = live.res;
  assert.ok(res);
  for (const [i, t] of [
    [1, 30],
    [2, 31.5],
  ]) {
    // Far later in the recording's time than the page has played: a live session shows at once.
    res.write(line([t, "o", `typed ${i}\r\n`]));
    const t0 = Date.now();
    await page.waitForFunction((s) => document.querySelector(".xterm-rows")?.textContent?.includes(s), `typed ${i}`, { timeout: 5000 });
    const took = Date.now() - t0;
    assert.ok(took < 1000, `new output took ${took} ms to show`);
  }
  res.end();
  await page.waitForFunction(() => !(/** @type {any} */ (window).player.live));
  assert.equal(
    await page.$eval(".player .badge.live", (el) => /** @type {HTMLElement} */ (el).hidden),
    true,
    "the badge goes when the session ends",
  );
  assert.match(await page.$eval(".player-status", (el) => el.textContent), /The session ended/);
  await page.close();
});
