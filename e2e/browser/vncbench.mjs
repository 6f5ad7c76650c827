// VNC figures on loopback (a benchmark, not a test; about a minute): through the console's
// VNC window (noVNC over ipn.dial, the agent's --vnc forward, Xtigervnc 1600x1000):
// - update latency: xsetroot paints a new colour → the centre of the noVNC canvas shows it;
// - frame rate: full-screen colour changes the canvas shows per second while xsetroot paints
//   as fast as it can (and how many it painted);
// - input latency: a Caps Lock press in the VNC window → the X server's Caps Lock indicator on
//   (polled with `xset q`, so each sample is late by up to one poll, about 2–5 ms).
// Needs `npm run build`, bin/tsconnect, Xtigervnc, xsetroot and xset.
import { execFileSync, execFile } from "node:child_process";
import { promisify } from "node:util";
import { launch } from "./demo.js";
import { alice } from "./console-harness.mjs";
import { startVNCNet, openDeskVNC } from "./vnc-helpers.mjs";

const run = promisify(execFile);
const quantile = (xs, q) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))];
const fmt = (xs) => `median ${quantile(xs, 0.5)} ms, p90 ${quantile(xs, 0.9)} ms, max ${Math.max(...xs)} ms (${xs.length} samples)`;

const vnc = await startVNCNet();
const browser = await launch({ args: ["--disable-popup-blocking"] });
try {
  const context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
  const page = await context.newPage();
  vnc.paint([0, 0, 0]);
  const win = await openDeskVNC(context, page, vnc.net.url, alice);
  // The page's clock and ours are the same machine's: Date.now() on both sides.
  const seen = (rgb) =>
    win.evaluate(
      (want) =>
        new Promise((resolve) => {
          const c = /** @type {HTMLCanvasElement} */ (document.querySelector("canvas"));
          const ctx = c.getContext("2d", { willReadFrequently: true });
          const poll = () => {
            const d = ctx?.getImageData(c.width >> 1, c.height >> 1, 1, 1).data;
            if (d && d[0] === want[0] && d[1] === want[1] && d[2] === want[2]) resolve(Date.now());
            else requestAnimationFrame(poll);
          };
          poll();
        }),
      rgb,
    );

  const update = [];
  for (let i = 1; i <= 30; i++) {
    const rgb = [i * 8, 255 - i * 8, (i * 37) & 0xff];
    const shown = seen(rgb);
    const t0 = Date.now();
    vnc.paint(rgb);
    update.push((await shown) - t0);
  }
  console.log(`vnc figures: update latency (xsetroot → canvas): ${fmt(update)}`);

  const counting = win.evaluate(
    (ms) =>
      new Promise((resolve) => {
        const c = /** @type {HTMLCanvasElement} */ (document.querySelector("canvas"));
        const ctx = c.getContext("2d", { willReadFrequently: true });
        let last = "";
        let changes = 0;
        const end = performance.now() + ms;
        const tick = () => {
          const d = ctx?.getImageData(c.width >> 1, c.height >> 1, 1, 1).data;
          const k = d ? `${d[0]},${d[1]},${d[2]}` : "";
          if (k !== last) changes++;
          last = k;
          if (performance.now() < end) requestAnimationFrame(tick);
          else resolve(changes);
        };
        tick();
      }),
    10_000,
  );
  let painted = 0;
  const until = Date.now() + 10_000;
  while (Date.now() < until) {
    const v = painted % 2 ? 0x20 : 0xe0;
    await run("xsetroot", ["-solid", `#${v.toString(16)}${v.toString(16)}${v.toString(16)}`], {
      env: { ...process.env, DISPLAY: vnc.display },
    });
    painted++;
  }
  const changes = /** @type {number} */ (await counting);
  console.log(
    `vnc figures: frame rate: ${(changes / 10).toFixed(1)} full-screen changes/s shown (xsetroot painted ${(painted / 10).toFixed(1)}/s; the page's animation frames bound what it can count)`,
  );

  const capsOn = () => /Caps Lock:\s+on/.test(execFileSync("xset", ["-display", vnc.display, "q"], { encoding: "utf8" }));
  await win.locator("canvas").click();
  const input = [];
  for (let i = 0; i < 20; i++) {
    const want = !capsOn();
    const t0 = Date.now();
    await win.keyboard.press("CapsLock");
    while (capsOn() !== want) {
      if (Date.now() - t0 > 5000) throw new Error("Caps Lock did not reach the X server in 5 s");
    }
    input.push(Date.now() - t0);
  }
  console.log(`vnc figures: input latency (Caps Lock in the window → X server indicator): ${fmt(input)}`);
} finally {
  await browser.close();
  await vnc.stop();
}
