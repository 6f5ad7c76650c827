// In-page probes for the terminal benchmarks and behaviour tests: keystroke echo (keydown →
// the rows of .xterm-rows changing), bulk output until a marker is drawn, long main-thread
// tasks, and the terminal's rows read back. install(context) adds them to every page and
// child window of a playwright browser context as window.__tb.

/** The script installed in every page (runs before the page's own scripts). */
function probe() {
  const tb = {
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
    /** Starts watching .xterm-rows (once it exists). */
    watch() {
      const rows = document.querySelector(".xterm-rows");
      if (!rows) throw new Error("no .xterm-rows on this page");
      if (tb.observer) return;
      // On the document as it is now: a child window's page may be written after load.
      document.addEventListener(
        "keydown",
        (e) => {
          if (tb.marker !== null && tb.markStart === null) tb.markStart = e.timeStamp;
          if (!tb.echoArmed) return;
          tb.t0 = e.timeStamp;
          tb.before = tb.rowsText();
        },
        true,
      );
      tb.observer = new MutationObserver(() => {
        const now = performance.now();
        tb.lastMutation = now;
        if (tb.t0 === null && tb.marker === null) return;
        const text = tb.rowsText();
        if (tb.t0 !== null && text !== tb.before) {
          tb.times.push(now - tb.t0);
          tb.t0 = null;
        }
        if (tb.marker !== null && text.includes(tb.marker)) {
          tb.markerAt = now;
          tb.marker = null;
        }
        for (const w of tb.waiters.splice(0)) w();
      });
      tb.observer.observe(rows, { childList: true, subtree: true, characterData: true });
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
}

/** Adds the probes to every page of context. @param {import("playwright-core").BrowserContext} context */
export async function install(context) {
  await context.addInitScript(probe);
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
