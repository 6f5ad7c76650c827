// An open browser SSH session across relay outages (issue 14): a console network whose
// relay can be taken down and brought back (the standalone `tsconnect derp`, or control with
// its embedded relay), and a terminal in Chromium printing a counter every 100 ms whose new
// lines are timestamped in the page.
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { bin, freePort, startConsoleNet, startUntil, consoleLogin, openSSHDialog, alice } from "./console-harness.mjs";
import { waitTerminal } from "./demo.js";

/** The outages the benchmark takes the relay down for, in a row on one session (ms). */
export const outages = [1000, 4000, 10_000, 30_000];

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Resolves once url answers HTTP (any status), polling every 20 ms for up to 30 s. */
async function waitHTTP(url) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      await fetch(url);
      return;
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`${url} does not answer: ${e}`);
      await sleep(20);
    }
  }
}

/** SIGKILLs proc and waits for it to exit. */
async function kill(proc, signal = "SIGKILL") {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.on("exit", r));
  proc.kill(signal);
  await exited;
}

/**
 * Starts a console network with one SSH agent, "alpha", whose relay is either a standalone
 * `tsconnect derp` (the DERP map's only region; control's embedded relay off) or control's
 * embedded one. down() takes the relay away (SIGKILL of the relay; a clean stop of control,
 * as BenchmarkOutageResume does), up() brings it back on the same address, key and state and
 * resolves once it answers. The ephemeral grace is the default 30 s: control gives the nodes
 * that were online when it stopped a new grace at start-up, so even a 30 s outage keeps the
 * browser's node.
 * @param {"standalone" | "embedded"} kind
 */
export async function outageNet(kind) {
  const grace = ["--ephemeral-grace", "30s"]; // the default, not the console harness's 3 s
  if (kind === "embedded") {
    const net = await startConsoleNet({ tagged: ["alpha"], controlArgs: async () => grace });
    const port = new URL(net.url).port;
    let control = null; // the restarted control, once there is one
    return {
      net,
      async down() {
        const p = control ?? net.controlProc;
        await kill(p, "SIGTERM");
      },
      async up() {
        control = await startUntil(["control", "--listen", `127.0.0.1:${port}`, "--state", net.state, ...grace], /serving /, {}, "control");
        net.track(control.proc);
        control = control.proc;
      },
    };
  }
  const relayPort = await freePort();
  let relay = null;
  let net = null;
  const startRelay = async () => {
    const p = spawn(bin, ["derp", "--dev", "--listen", `127.0.0.1:${relayPort}`, "--key-file", join(net.dir, "relay.key")], {
      stdio: "ignore",
    });
    net.track(p);
    relay = p;
    await waitHTTP(`http://127.0.0.1:${relayPort}/derp/probe`);
  };
  net = await startConsoleNet({
    tagged: ["alpha"],
    controlArgs: async (_url, n) => {
      net = n;
      await startRelay();
      const map = join(n.dir, "derpmap.json");
      const node = { Name: "7a", RegionID: 7, HostName: "127.0.0.1", DERPPort: relayPort, STUNPort: -1, InsecureForTests: true };
      writeFileSync(map, JSON.stringify({ Regions: { 7: { RegionID: 7, RegionCode: "sa", RegionName: "standalone", Nodes: [node] } } }));
      return ["--derp-map", map, "--no-embedded-derp", ...grace];
    },
  });
  return {
    net,
    down: () => kill(relay),
    up: startRelay,
  };
}

/**
 * Logs alice in to the console, opens an SSH session to alpha as root in a child window, and
 * starts a shell loop printing "tick N" every 100 ms. The child page keeps the time (Date.now)
 * at which each new counter value appeared in window.__ticks.
 * @param {import("playwright-core").Browser} browser
 */
export async function openTicker(browser, net, host = "alpha") {
  const context = await browser.newContext({ viewport: { width: 1000, height: 700 } });
  const page = await context.newPage();
  await consoleLogin(page, net.url, alice);
  await page.locator(`tr[data-machine="${host}"] .online`).waitFor();
  const dlg = await openSSHDialog(page, host);
  await dlg.locator('input[name=user][value="root"]').check();
  const [child] = await Promise.all([context.waitForEvent("page"), dlg.getByRole("button", { name: "Connect" }).click()]);
  await waitTerminal(child, /[$#] *$/m, 30_000);
  await child.evaluate(() => {
    const w = /** @type {any} */ (window);
    w.__ticks = [];
    let max = 0;
    const rows = /** @type {Element} */ (document.querySelector(".xterm-rows"));
    new MutationObserver(() => {
      for (const m of rows.textContent.matchAll(/tick (\d+)/g)) {
        const n = Number(m[1]);
        if (n > max) {
          max = n;
          w.__ticks.push(Date.now());
        }
      }
    }).observe(rows, { subtree: true, childList: true, characterData: true });
  });
  await child.keyboard.type("i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.1; done\n");
  return {
    context,
    page,
    child,
    /** The time of the first new counter value after since (ms), waiting up to limit; null if none came. */
    async tickAfter(since, limit) {
      const deadline = since + limit;
      for (;;) {
        const t = await child.evaluate((s) => /** @type {any} */ (window).__ticks.find((x) => x > s) ?? null, since);
        if (t !== null || Date.now() > deadline) return t;
        await sleep(20);
      }
    },
  };
}

/**
 * Lets the session print for 3 s, takes the relay of o (from outageNet) down for ms, brings
 * it back, and returns how long after it answered again the ticker's output resumed (ms);
 * throws if not within limit.
 */
export async function outageResume(o, tk, ms, limit) {
  // The session runs a while first: a relay connection up for less than 2 s does not reset
  // the relay clients' back-off (derpws), which back-to-back outages would measure instead.
  await sleep(3000);
  if ((await tk.tickAfter(Date.now() - 500, 5000)) === null) throw new Error("the session prints nothing before the outage");
  await o.down();
  await sleep(ms);
  await o.up();
  const back = Date.now();
  const t = await tk.tickAfter(back, limit);
  if (t === null)
    throw new Error(
      `after a ${ms / 1000} s relay outage the open session's output did not resume within ${limit / 1000} s of the relay coming back`,
    );
  return t - back;
}
