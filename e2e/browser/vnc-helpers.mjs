// The VNC side of the VNC test and benchmark: TigerVNC's X server (Xtigervnc, an X display
// that is its own VNC server, on loopback, no VNC password) with colours painted on its root
// window by xsetroot, and an agent forwarding its overlay port 5900 there, in a console network.
import { spawn, execFileSync } from "node:child_process";
import { startConsoleNet, freePort, consoleLogin, machineRow } from "./console-harness.mjs";

/** The policy: alice reaches port 5900 of tag:desk machines; everyone port 22; nothing else. */
export const vncPolicy = `{
	"tagOwners": {"tag:desk": ["alice@example.com"]},
	"acls": [
		{"action": "accept", "src": ["alice@example.com"], "dst": ["tag:desk:5900"]},
		{"action": "accept", "src": ["*"], "dst": ["*:22"]},
	],
}`;

/**
 * Starts Xtigervnc (1600x1000) and a console network under vncPolicy with agent "desk"
 * (tag:desk, `tsconnect up --vnc` to it); paint(rgb) sets the display's root colour.
 */
export async function startVNCNet() {
  const port = await freePort();
  const args = ["-displayfd", "3", "-geometry", "1600x1000", "-depth", "24", "-rfbport", String(port), "-localhost"];
  const x = spawn("Xtigervnc", [...args, "-SecurityTypes", "None", "-AlwaysShared"], { stdio: ["ignore", "ignore", "pipe", "pipe"] });
  const display = await new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error("Xtigervnc printed no display in 10 s")), 10_000);
    x.stdio[3]?.on("data", (d) => {
      out += d;
      if (out.includes("\n")) {
        clearTimeout(timer);
        resolve(`:${out.trim()}`);
      }
    });
    x.on("exit", (code) => reject(new Error(`Xtigervnc exited ${code}`)));
  });
  const env = { ...process.env, DISPLAY: String(display) };
  const net = await startConsoleNet({ tagged: [] });
  net.setPolicy(vncPolicy);
  await net.agent("desk", { tags: "tag:desk", ssh: false, args: ["--vnc", `127.0.0.1:${port}`] });
  return {
    net,
    display: String(display),
    /** @param {number[]} rgb */
    paint(rgb) {
      execFileSync("xsetroot", ["-solid", "#" + rgb.map((c) => c.toString(16).padStart(2, "0")).join("")], { env });
    },
    async stop() {
      await net.stop();
      x.kill("SIGTERM");
    },
  };
}

/**
 * Signs user in to the console on a page of context, clicks "VNC…" of desk and resolves with
 * the child window once noVNC is connected.
 * @param {import("playwright-core").BrowserContext} context @param {import("playwright-core").Page} page
 */
export async function openDeskVNC(context, page, url, user) {
  await consoleLogin(page, url, user);
  const button = machineRow(page, "desk").getByRole("button", { name: /^VNC to desk/ });
  await button.waitFor({ timeout: 30_000 });
  const [win] = await Promise.all([context.waitForEvent("page"), button.click()]);
  await win.locator('#status[data-state="connected"]').waitFor({ timeout: 60_000 });
  return win;
}

/** Reads the centre pixel of the noVNC canvas in win (RGBA), or null without a canvas. */
export function centrePixel(win) {
  return win.evaluate(() => {
    const c = document.querySelector("canvas");
    if (!c || c.width === 0) return null;
    return [...(c.getContext("2d")?.getImageData(c.width >> 1, c.height >> 1, 1, 1).data ?? [])];
  });
}
