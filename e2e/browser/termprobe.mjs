// In-page probes for the terminal benchmarks and behaviour tests: keystroke echo (keydown →
// the terminal's drawn rows changing), bulk output until a marker is drawn, long main-thread
// tasks, and the terminal's rows read back. install(context) adds them to every page and
// child window of a playwright browser context as window.__tb.
//
// Two ways to see a change (install's probe option): "render" (the default) looks once per
// frame the terminal draws, from xterm.js's onRender, at what it drew (the rows of
// .xterm-rows with the DOM renderer, else the rows of its buffer it just drew); the terminal
// comes from the test hook globalThis.__tsconnectTerminalHook (npm/src/terminal.ts and the
// reference page call it with each terminal they open). "mutation" is the older probe: a
// MutationObserver on every row of .xterm-rows (subtree, characterData), which itself costs the
// page much of a core during bulk output; it is kept to measure what the probe costs.
import { waitTerminal } from "./demo.js";

/** The script installed in every page (runs before the page's own scripts). */
function probe(mode) {
  const tb = {
    mode,
    watching: false,
    /** @type {any} */ term: null,
    longtasks: /** @type {number[]} */ ([]),
    t0: /** @type {number | null} */ (null),
    before: "",
    times: /** @type {number[]} */ ([]),
    lastMutation: 0,
    echoArmed: false,
    marker: /** @type {string | null} */ (null),
    markStart: /** @type {number | null} */ (null),
    markerAt: /** @type {number | null} */ (null),
    waiters: /** @type {(() => void)[]} */ ([]),
    observer: /** @type {MutationObserver | null} */ (null),
    rowsText() {
      const rows = document.querySelector(".xterm-rows");
      return rows ? Array.from(rows.children, (r) => (r.textContent ?? "").replace(/\u00a0/g, " ")).join("\n") : "";
    },
    /** What the terminal shows: .xterm-rows with the DOM renderer, else its buffer's visible rows. */
    drawnText() {
      const rows = document.querySelector(".xterm-rows");
      if ((rows && rows.childElementCount > 0) || !tb.term) return tb.rowsText();
      const buf = tb.term.buffer.active;
      const out = [];
      for (let y = 0; y < tb.term.rows; y++) out.push(buf.getLine(buf.viewportY + y)?.translateToString(true) ?? "");
      return out.join("\n");
    },
    /** A change was drawn: records echo and marker times. */
    changed() {
      const now = performance.now();
      tb.lastMutation = now;
      if (tb.t0 === null && tb.marker === null) return;
      const text = tb.drawnText();
      if (tb.t0 !== null && text !== tb.before) {
        tb.times.push(now - tb.t0);
        tb.t0 = null;
      }
      if (tb.marker !== null && text.includes(tb.marker)) {
        tb.markerAt = now;
        tb.marker = null;
      }
      for (const w of tb.waiters.splice(0)) w();
    },
    /** The hook's callback: the terminal drawn in this window. */
    attach(term) {
      tb.term = term;
    },
    /** Starts watching the terminal (once it is drawn). */
    watch() {
      const rows = document.querySelector(".xterm-rows");
      if (tb.observer || tb.watching) return;
      if (!rows && tb.mode === "mutation") throw new Error("no .xterm-rows on this page");
      if (tb.mode === "render" && !tb.term) throw new Error("render probe: no terminal was handed to __tsconnectTerminalHook on this page");
      tb.watching = true;
      // On the document as it is now: a child window's page may be written after load.
      document.addEventListener(
        "keydown",
        (e) => {
          if (tb.marker !== null && tb.markStart === null) tb.markStart = e.timeStamp;
          if (!tb.echoArmed) return;
          tb.t0 = e.timeStamp;
          tb.before = tb.drawnText();
        },
        true,
      );
      if (tb.mode === "render") {
        // onRender fires right after the renderer drew the rows, in the frame that drew them.
        tb.term.onRender(() => tb.changed());
        return;
      }
      tb.observer = new MutationObserver(() => tb.changed());
      tb.observer.observe(/** @type {Element} */ (rows), { childList: true, subtree: true, characterData: true });
    },
    /** Resolves once n echoes were measured, or after timeout ms (false). */
    waitEchoes(n, timeout) {
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          tb.waiters.splice(tb.waiters.indexOf(check), 1);
          tb.t0 = null;
          resolve(false);
        }, timeout);
        const check = () => {
          if (tb.times.length < n) return void tb.waiters.push(check);
          clearTimeout(timer);
          resolve(true);
        };
        check();
      });
    },
    /** Arms the marker: the next keydown starts the clock, markerAt is when the rows show text. */
    armMarker(text) {
      tb.markerAt = null;
      tb.marker = text;
    },
  };
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) tb.longtasks.push(e.duration);
    }).observe({ type: "longtask", buffered: true });
  } catch {
    // no longtask support: the figure reads 0
  }
  // @ts-ignore
  window.__tb = tb;
  // Terminals opened by this page's scripts: handed to the probe of the window they are drawn in.
  // @ts-ignore
  globalThis.__tsconnectTerminalHook = (term) => {
    const w = term.element?.ownerDocument?.defaultView ?? window;
    (w.__tb ?? tb).attach(term);
  };
}

/**
 * Adds the probes to every page of context; probe is "render" (default, or $TERMBENCH_PROBE)
 * or "mutation" (see the top of this file).
 * @param {import("playwright-core").BrowserContext} context
 */
export async function install(context, probe_ = process.env.TERMBENCH_PROBE || "render") {
  if (probe_ !== "render" && probe_ !== "mutation") throw new Error(`termprobe: probe ${probe_} is neither render nor mutation`);
  await context.addInitScript(probe, probe_);
}

/** Sorted copy of xs. @param {number[]} xs */
const sorted = (xs) => [...xs].sort((a, b) => a - b);
/** The q-quantile (0..1) of xs, nearest rank. @param {number[]} xs @param {number} q */
export function quantile(xs, q) {
  const s = sorted(xs);
  return s.length ? s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] : NaN;
}

/**
 * Measures n keystrokes' echo on page (a terminal with an empty shell prompt, focused):
 * alternately a letter and Backspace, one at a time. Returns the latencies (ms) and how many
 * keystrokes drew nothing within 2 s.
 * @param {import("playwright-core").Page} page
 */
export async function measureEcho(page, n = 200) {
  await page.evaluate(() => {
    // @ts-ignore
    const tb = window.__tb;
    tb.watch();
    tb.times = [];
    tb.echoArmed = true;
  });
  await page.locator(".xterm-helper-textarea").focus();
  let missed = 0;
  for (let i = 0; i < n; i++) {
    const want = i + 1 - missed;
    await page.keyboard.press(i % 2 === 0 ? "x" : "Backspace");
    // @ts-ignore
    const ok = await page.evaluate(([k, t]) => window.__tb.waitEchoes(k, t), [want, 2000]);
    if (!ok) missed++;
  }
  // @ts-ignore
  const times = await page.evaluate(() => ((window.__tb.echoArmed = false), window.__tb.times));
  return { times, missed };
}

/**
 * Types command (a shell line printing marker when done) and measures from the Enter
 * keydown to the marker showing in the rows. Returns ms.
 * @param {import("playwright-core").Page} page
 */
export async function timeToMarker(page, command, marker, timeout = 120_000) {
  await page.evaluate(() => {
    // @ts-ignore
    window.__tb.watch();
  });
  await page.locator(".xterm-helper-textarea").focus();
  await page.keyboard.type(command);
  await page.evaluate((m) => {
    // @ts-ignore
    const tb = window.__tb;
    tb.markStart = null;
    tb.armMarker(m);
  }, marker);
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => /** @type {any} */ (window).__tb.markerAt !== null, null, { timeout, polling: 100 });
  return page.evaluate(() => {
    // @ts-ignore
    const tb = window.__tb;
    return tb.markerAt - tb.markStart;
  });
}

/** Clears the long tasks recorded on page so far. @param {import("playwright-core").Page} page */
export const resetLongTasks = (page) =>
  page.evaluate(() => {
    // @ts-ignore
    window.__tb.longtasks = [];
  });

/** The longest task (ms) recorded on page since the last reset. @param {import("playwright-core").Page} page */
export const longestTask = (page) =>
  page.evaluate(() => {
    // @ts-ignore
    const l = window.__tb.longtasks;
    return l.length ? Math.max(...l) : 0;
  });

/**
 * Presses key on page and returns the ms from its keydown until the rows show marker (null
 * if not within timeout ms).
 * @param {import("playwright-core").Page} page
 */
export async function keyToMarker(page, key, marker, timeout = 10_000) {
  await page.evaluate((m) => {
    // @ts-ignore
    const tb = window.__tb;
    tb.watch();
    tb.markStart = null;
    tb.armMarker(m);
  }, marker);
  await page.keyboard.press(key);
  try {
    await page.waitForFunction(() => /** @type {any} */ (window).__tb.markerAt !== null, null, { timeout, polling: 20 });
  } catch {
    await page.evaluate(() => {
      // @ts-ignore
      window.__tb.marker = null;
    });
    return null;
  }
  return page.evaluate(() => {
    // @ts-ignore
    const tb = window.__tb;
    return tb.markerAt - tb.markStart;
  });
}

/**
 * Presses key and returns the ms from its keydown to the last change of the rows, once they
 * stayed unchanged for quiet ms (the output stopped on screen); null if still changing after
 * timeout ms.
 * @param {import("playwright-core").Page} page
 */
export async function keyToQuiet(page, key, quiet = 1000, timeout = 20_000) {
  await page.evaluate(() => {
    // @ts-ignore
    const tb = window.__tb;
    tb.watch();
    tb.keyAt = null;
    document.addEventListener("keydown", (e) => (tb.keyAt ??= e.timeStamp), { capture: true, once: true });
  });
  await page.keyboard.press(key);
  const deadline = Date.now() + timeout;
  while (Date.now() < deadline) {
    const r = await page.evaluate(() => {
      // @ts-ignore
      const tb = window.__tb;
      return { idle: performance.now() - tb.lastMutation, stop: tb.lastMutation - tb.keyAt };
    });
    if (r.idle >= quiet) return Math.max(0, r.stop);
    await new Promise((res) => setTimeout(res, 100));
  }
  return null;
}

/**
 * Memory of a page's session in bytes through the DevTools protocol: the JS heap (used) plus
 * array buffer backing stores of the page and of each of its Workers, and the Workers'
 * WebAssembly memories (every WebAssembly.Memory found by Runtime.queryObjects; not with
 * wasm false: a wasm memory only grows, so its size after a transfer is its largest, and
 * queryObjects in a Worker busy with one has crashed the renderer).
 * @param {import("playwright-core").Page} page
 */
export async function memory(page, { wasm = true } = {}) {
  const cdp = await page.context().newCDPSession(page);
  try {
    const heap = await cdp.send("Runtime.getHeapUsage");
    const out = { page: heap.usedSize + heap.backingStorageSize, workerHeap: 0, wasm: 0, workers: 0 };
    /** @type {any[]} */
    const attached = [];
    /** @type {Map<number, (m: any) => void>} */
    const pending = new Map();
    let id = 0;
    cdp.on("Target.attachedToTarget", (e) => attached.push(e));
    cdp.on("Target.receivedMessageFromTarget", (e) => {
      const m = JSON.parse(e.message);
      pending.get(m.id)?.(m.result ?? { error: m.error });
    });
    // Not flattened: playwright's CDP sessions address only their own target.
    await cdp.send("Target.setAutoAttach", { autoAttach: true, waitForDebuggerOnStart: false, flatten: false });
    await new Promise((r) => setTimeout(r, 300));
    for (const a of attached) {
      if (a.targetInfo.type !== "worker") continue;
      out.workers++;
      /** @type {(method: string, params?: object) => Promise<any>} */
      const send = (method, params = {}) =>
        new Promise((resolve) => {
          const mid = ++id;
          pending.set(mid, resolve);
          void cdp.send("Target.sendMessageToTarget", { sessionId: a.sessionId, message: JSON.stringify({ id: mid, method, params }) });
        });
      const wh = await send("Runtime.getHeapUsage");
      out.workerHeap += (wh.usedSize ?? 0) + (wh.backingStorageSize ?? 0);
      if (!wasm) continue;
      const proto = await send("Runtime.evaluate", { expression: "WebAssembly.Memory.prototype" });
      const mems = await send("Runtime.queryObjects", { prototypeObjectId: proto.result.objectId });
      const size = await send("Runtime.callFunctionOn", {
        objectId: mems.objects.objectId,
        functionDeclaration: "function () { return this.reduce((s, m) => s + m.buffer.byteLength, 0); }",
        returnByValue: true,
      });
      out.wasm += size.result.value ?? 0;
    }
    return { ...out, total: out.page + out.workerHeap + out.wasm };
  } finally {
    await cdp.detach().catch(() => {});
  }
}

/**
 * Which renderer draws page's terminal: "dom" (rows as text in .xterm-rows), "webgl" (a
 * WebGL canvas in .xterm-screen) or "none".
 * @param {import("playwright-core").Page} page
 */
export const drawnBy = (page) =>
  page.evaluate(() => {
    if ((document.querySelector(".xterm-rows")?.childElementCount ?? 0) > 0) return "dom";
    for (const c of document.querySelectorAll(".xterm-screen canvas")) {
      try {
        if (/** @type {HTMLCanvasElement} */ (c).getContext("webgl2")) return "webgl";
      } catch {
        // another context kind
      }
    }
    return "none";
  });

/**
 * Opens the demo page at demoURL in a new context of browser with ?renderer=renderer, waits
 * for the shell, and traces (Chromium tracing with categories) running command until marker
 * is drawn. Returns the time in ms and the trace's events.
 */
export async function traceToMarker(browser, demoURL, renderer, categories, command, marker) {
  const context = await browser.newContext({ viewport: { width: 960, height: 600 } });
  await install(context);
  const page = await context.newPage();
  const u = new URL(demoURL);
  u.searchParams.set("renderer", renderer);
  await page.goto(u.href);
  await waitTerminal(page, /[$#] *$/m, 30_000);
  await browser.startTracing(page, { categories });
  const ms = await timeToMarker(page, command, marker);
  const trace = JSON.parse((await browser.stopTracing()).toString());
  return { ms, events: trace.traceEvents ?? trace };
}
