// VNC in the console with real parts: TigerVNC's X server (Xtigervnc: an X display that is
// its own VNC server, on loopback) with a known colour on its root window (xsetroot), an agent
// with `tsconnect up --vnc` forwarding its overlay port 5900 there. alice, whom the policy lets reach port 5900, gets "VNC…", and noVNC in the child
// window draws the screen (a pixel of its canvas read back); bob, without that rule, gets no
// "VNC…" and no VNC launch. Needs `npm run build`, bin/tsconnect, Xtigervnc and xsetroot.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { launch } from "./demo.js";
import { startConsoleNet, alice, bob, consoleLogin, machineRow, watchedPage, freePort, apiLogin } from "./console-harness.mjs";

// The colour drawn on the X display, and what noVNC must show.
const colour = [0x33, 0x66, 0xcc];
const policy = `{
	"tagOwners": {"tag:desk": ["alice@example.com"]},
	"acls": [
		{"action": "accept", "src": ["alice@example.com"], "dst": ["tag:desk:5900"]},
		{"action": "accept", "src": ["*"], "dst": ["*:22"]},
	],
}`;

let vnc;
let net;
let browser;
let desk;

before(async () => {
  const port = await freePort();
  vnc = spawn(
    "Xtigervnc",
    [
      "-displayfd",
      "3",
      "-geometry",
      "1600x1000",
      "-depth",
      "24",
      "-rfbport",
      String(port),
      "-localhost",
      "-SecurityTypes",
      "None",
      "-AlwaysShared",
    ],
    { stdio: ["ignore", "ignore", "pipe", "pipe"] },
  );
  const display = await new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error("Xtigervnc printed no display in 10 s")), 10_000);
    vnc.stdio[3]?.on("data", (d) => {
      out += d;
      if (out.includes("\n")) {
        clearTimeout(timer);
        resolve(`:${out.trim()}`);
      }
    });
    vnc.on("exit", (code) => reject(new Error(`Xtigervnc exited ${code}`)));
  });
  const hex = "#" + colour.map((c) => c.toString(16).padStart(2, "0")).join("");
  execFileSync("xsetroot", ["-solid", hex], { env: { ...process.env, DISPLAY: String(display) } });
  net = await startConsoleNet({ tagged: [] });
  net.setPolicy(policy);
  desk = await net.agent("desk", { tags: "tag:desk", ssh: false, args: ["--vnc", `127.0.0.1:${port}`] });
  browser = await launch({ args: ["--disable-popup-blocking"] });
});

after(async () => {
  await browser?.close();
  await net?.stop();
  vnc?.kill("SIGTERM");
});

test("alice opens VNC… and noVNC draws the display's colour", async (t) => {
  const problems = [];
  const { context, page } = await watchedPage(browser, problems, t);
  await consoleLogin(page, net.url, alice);
  const button = machineRow(page, "desk").getByRole("button", { name: /^VNC to desk/ });
  await button.waitFor({ timeout: 30_000 });
  const started = Date.now();
  const [win] = await Promise.all([context.waitForEvent("page"), button.click()]);
  await win.locator('#status[data-state="connected"]').waitFor({ timeout: 60_000 });
  const probe = () =>
    win.evaluate(() => {
      const c = document.querySelector("canvas");
      if (!c) return "no canvas";
      const d = c.getContext("2d")?.getImageData(Math.floor(c.width / 2), Math.floor(c.height / 2), 1, 1).data;
      return `${c.width}x${c.height} ${JSON.stringify([...(d ?? [])])}`;
    });
  const pixel = await win
    .waitForFunction(
      (want) => {
        const c = document.querySelector("canvas");
        if (!c || c.width === 0) return false;
        const px = [...(c.getContext("2d")?.getImageData(Math.floor(c.width / 2), Math.floor(c.height / 2), 1, 1).data ?? [])];
        return px.slice(0, 3).every((v, i) => Math.abs(v - want[i]) <= 2) ? px : false;
      },
      colour,
      { timeout: 30_000 },
    )
    .catch(async (e) => {
      throw new Error(`${e.message}: the canvas shows ${await probe()}`);
    });
  console.log(
    `vnc figures: VNC… click to the display's colour on the canvas in ${Date.now() - started} ms; pixel ${JSON.stringify(await pixel.jsonValue())}`,
  );
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
  await consoleLogin(page, net.url, bob);
  await machineRow(page, "desk").waitFor();
  assert.equal(
    await machineRow(page, "desk")
      .getByRole("button", { name: /^VNC to/ })
      .count(),
    0,
    "no VNC… for bob",
  );
  const s = await apiLogin(net.url, bob);
  const nodes = await (await fetch(`${net.url}/api/v1/nodes`, { headers: { Cookie: s.cookie } })).json();
  const d = nodes.nodes.find((n) => n.name === "desk");
  assert.deepEqual([d.vnc, d.vncAllowed], [true, false]);
  const r = await fetch(`${net.url}/api/v1/nodes/${d.id}/vnc-launch`, {
    method: "POST",
    headers: { Cookie: s.cookie, "X-CSRF-Token": s.csrf, Origin: net.url },
  });
  assert.equal(r.status, 403);
  const body = await r.json();
  assert.match(body.error ?? body.message ?? JSON.stringify(body), /port 5900/);
  void desk;
});
