// Helpers for the browser tests: start `tsconnect demo`, launch Debian's Chromium, read the terminal.
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, mkdirSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const bin = join(root, "bin", "tsconnect");
export const artifacts = join(root, "e2e", "artifacts");

/**
 * Starts `tsconnect demo` on a free loopback port; resolves once it printed its URL. Each
 * URL's token opens one session, and the demo prints a fresh URL once a token is used:
 * `url` is the first, `takeURL()` hands out the newest not handed out yet (waiting for it).
 */
export async function startDemo({ grace = "5s" } = {}) {
  if (!existsSync(bin)) throw new Error(`${bin} is missing: run make build first`);
  const state = mkdtempSync(join(tmpdir(), "tsconnect-demo-"));
  const proc = spawn(bin, ["demo", "--listen", "127.0.0.1:0", "--state", state, "--ephemeral-grace", grace], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let log = "";
  let out = "";
  const urls = [];
  const handed = new Set();
  proc.stderr.on("data", (d) => {
    log += d;
  });
  proc.stdout.on("data", (d) => {
    out += d;
    for (const m of out.matchAll(/^URL: (\S+)$/gm)) if (!urls.includes(m[1])) urls.push(m[1]);
  });
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`demo printed no URL in 60 s:\n${out}\n${log}`)), 60_000);
    const poll = setInterval(() => {
      if (urls.length > 0) {
        clearTimeout(timer);
        clearInterval(poll);
        resolve(undefined);
      }
    }, 20);
    proc.on("exit", (code) => {
      clearTimeout(timer);
      clearInterval(poll);
      reject(new Error(`demo exited ${code}:\n${out}\n${log}`));
    });
  });
  return {
    get url() {
      handed.add(urls[0]);
      return urls[0];
    },
    async takeURL(timeout = 15_000) {
      const deadline = Date.now() + timeout;
      for (;;) {
        const u = urls[urls.length - 1];
        if (!handed.has(u)) {
          handed.add(u);
          return u;
        }
        if (Date.now() > deadline) throw new Error(`the demo printed no fresh URL (its last token is still unused?):\n${out}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    state,
    proc,
    log: () => log,
    out: () => out,
    nodes() {
      return JSON.parse(execFileSync(bin, ["nodes", "--state", state, "--json"], { encoding: "utf8" }));
    },
    async stop() {
      proc.kill("SIGTERM");
      await new Promise((r) => {
        if (proc.exitCode !== null) r(undefined);
        else proc.on("exit", r);
      });
      rmSync(state, { recursive: true, force: true });
    },
  };
}

/**
 * Launches Debian's Chromium headless with the flags this machine needs (plus args), with env as
 * its environment if given.
 * @param {{ args?: string[], env?: Record<string, string | undefined> }} [opts]
 */
export async function launch({ args = [], env = undefined } = {}) {
  // playwright gives the browser a fresh, temporary profile of its own.
  const browser = await chromium.launch({
    env,
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-quic",
      "--no-first-run",
      "--disable-component-update",
      "--disable-sync",
      ...args,
    ],
  });
  return browser;
}

/**
 * Launches Chromium headful on an X display (see startXvfb) as a user's browser runs: without
 * playwright's focus emulation (which keeps every page visible) and background-throttling
 * switches, so a background tab is really hidden and throttled. Playwright attaches over CDP;
 * use the returned default context. close() ends the browser and its profile.
 * @param {string} display
 */
export async function launchHeadful(display) {
  const profile = mkdtempSync(join(tmpdir(), "tsconnect-chromium-"));
  const proc = spawn(
    process.env.CHROMIUM || "/usr/bin/chromium",
    [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-quic",
      "--no-first-run",
      "--no-default-browser-check",
      "--disable-component-update",
      "--disable-sync",
      "--disable-popup-blocking",
      "--password-store=basic",
      `--user-data-dir=${profile}`,
      "--remote-debugging-address=127.0.0.1",
      "--remote-debugging-port=0",
      "about:blank",
    ],
    { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, DISPLAY: display } },
  );
  let err = "";
  const ws = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`chromium printed no DevTools URL in 30 s:\n${err}`)), 30_000);
    proc.stderr.on("data", (d) => {
      err += d;
      const m = err.match(/DevTools listening on (ws:\/\/\S+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    proc.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`chromium exited ${code}:\n${err}`));
    });
  });
  // noDefaults: the default context gets none of playwright's overrides (focus emulation).
  const browser = await chromium.connectOverCDP(ws, /** @type {any} */ ({ noDefaults: true }));
  return {
    browser,
    context: browser.contexts()[0],
    async close() {
      await browser.close().catch(() => {});
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill("SIGTERM");
        await new Promise((r) => proc.on("exit", r));
      }
      // Chromium's helper processes may still write into the profile for a moment after it exits.
      rmSync(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
    },
  };
}

/**
 * Starts Xvfb on a free display (for headful Chromium: pages that can really be hidden);
 * resolves with the display (":N") and stop().
 */
export async function startXvfb() {
  const proc = spawn("Xvfb", ["-displayfd", "3", "-screen", "0", "1600x1000x24", "-nolisten", "tcp"], {
    stdio: ["ignore", "ignore", "pipe", "pipe"],
  });
  let err = "";
  proc.stderr?.on("data", (d) => {
    err += d;
  });
  const display = await new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`Xvfb printed no display in 10 s:\n${err}`)), 10_000);
    proc.stdio[3]?.on("data", (d) => {
      out += d;
      if (out.includes("\n")) {
        clearTimeout(timer);
        resolve(`:${out.trim()}`);
      }
    });
    proc.on("error", reject);
    proc.on("exit", (code) => reject(new Error(`Xvfb exited ${code}:\n${err}`)));
  });
  return {
    display,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill("SIGTERM");
      await new Promise((r) => proc.on("exit", r));
    },
  };
}

/**
 * Returns the terminal's visible text: the rows xterm's DOM renderer draws as text, else (the
 * WebGL renderer draws none) what termprobe.mjs's probe reads from the terminal, if installed.
 */
export async function terminalText(page) {
  return page.evaluate(() => {
    const rows = document.querySelector(".xterm-rows");
    if (rows && rows.childElementCount > 0) return Array.from(rows.children, (r) => r.textContent.replace(/\u00a0/g, " ")).join("\n");
    // @ts-ignore
    const tb = window.__tb;
    return tb?.term ? tb.drawnText() : "";
  });
}

/** Waits until the terminal text matches re. */
export async function waitTerminal(page, re, timeout = 20_000) {
  const deadline = Date.now() + timeout;
  let text = "";
  while (Date.now() < deadline) {
    text = await terminalText(page);
    if (re.test(text)) return text;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`terminal never matched ${re}; it shows:\n${text}`);
}

export function ensureArtifacts() {
  mkdirSync(artifacts, { recursive: true });
}
