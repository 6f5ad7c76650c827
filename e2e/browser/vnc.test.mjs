// VNC in the console with real parts (vnc-helpers.mjs): TigerVNC's X server with a known colour
// on its root window, an agent with `tsconnect up --vnc` forwarding its overlay port 5900
// there. alice, whom the policy lets reach port 5900, gets "VNC…", and noVNC in the child
// window draws the screen (a pixel of its canvas read back); bob, without that rule, gets no
// "VNC…" and no VNC launch. Needs `npm run build`, bin/tsconnect, Xtigervnc and xsetroot.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launch } from "./demo.js";
import { alice, bob, consoleLogin, machineRow, watchedPage, apiLogin } from "./console-harness.mjs";
import { startVNCNet, openDeskVNC, centrePixel } from "./vnc-helpers.mjs";

// The colour drawn on the X display, and what noVNC must show.
const colour = [0x33, 0x66, 0xcc];

let vnc;
let browser;

before(async () => {
  vnc = await startVNCNet();
  vnc.paint(colour);
  browser = await launch({ args: ["--disable-popup-blocking"] });
});

after(async () => {
  await browser?.close();
  await vnc?.stop();
});

test("alice opens VNC… and noVNC draws the display's colour", async (t) => {
  const problems = [];
  const { context, page } = await watchedPage(browser, problems, t);
  const started = Date.now();
  const win = await openDeskVNC(context, page, vnc.net.url, alice);
  let px;
  for (let i = 0; i < 300; i++) {
    px = await centrePixel(win);
    if (px && px.slice(0, 3).every((v, j) => Math.abs(v - colour[j]) <= 2)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.deepEqual(px?.slice(0, 3), colour, "the canvas's centre shows the X display's colour");
  console.log(`vnc figures: sign-in, VNC… and the display's colour on the canvas in ${Date.now() - started} ms`);
  const size = await win.evaluate(() => {
    const c = document.querySelector("canvas");
    return [c?.width, c?.height];
  });
  assert.deepEqual(size, [1600, 1000], "the canvas is the X display's size");
  await win.close();
  assert.deepEqual(problems, []);
});

test("bob, without the port-5900 rule, gets no VNC… and no VNC launch", async (t) => {
  const problems = [];
  const { page } = await watchedPage(browser, problems, t);
  await consoleLogin(page, vnc.net.url, bob);
  await machineRow(page, "desk").waitFor();
  assert.equal(
    await machineRow(page, "desk")
      .getByRole("button", { name: /^VNC to/ })
      .count(),
    0,
    "no VNC… for bob",
  );
  const s = await apiLogin(vnc.net.url, bob);
  const nodes = await (await fetch(`${vnc.net.url}/api/v1/nodes`, { headers: { Cookie: s.cookie } })).json();
  const d = nodes.nodes.find((n) => n.name === "desk");
  assert.deepEqual([d.vnc, d.vncAllowed], [true, false]);
  const r = await fetch(`${vnc.net.url}/api/v1/nodes/${d.id}/vnc-launch`, {
    method: "POST",
    headers: { Cookie: s.cookie, "X-CSRF-Token": s.csrf, Origin: vnc.net.url },
  });
  assert.equal(r.status, 403);
  const body = await r.json();
  assert.match(body.error, /port 5900/);
});
