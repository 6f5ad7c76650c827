// openTerminal: an xterm.js terminal running an SSH session, drawn into an element of this
// page or into a same-origin child window whose document only shows it (the Terminal, the
// session and the Go runtime stay here). @xterm/* are peer dependencies, left external.

import { FitAddon } from "@xterm/addon-fit";
import { Unicode11Addon } from "@xterm/addon-unicode11";
import { WebLinksAddon } from "@xterm/addon-web-links";
import { Terminal } from "@xterm/xterm";
import type { IPN, IPNError, SSHFiles, SSHSession } from "../types/index.js";
import type * as API from "../types/terminal.js";
import type { OpenTerminalOptions, TerminalResult, TerminalSession, TerminalTarget } from "../types/terminal.js";
import { ipnError } from "./errors.js";
import { makeFindBar, type FindBar } from "./find.js";
import { makeKeyBar, wantKeyBar, type KeyBar } from "./keybar.js";
import { themeColors, type ThemeChoice } from "./theme.js";

function parseTarget(target: TerminalTarget): { host: string; user: string } {
  if (typeof target !== "string") return target;
  const at = target.lastIndexOf("@");
  if (at <= 0 || at === target.length - 1) throw ipnError("bad_request", `openTerminal: target ${JSON.stringify(target)} is not user@host`);
  return { user: target.slice(0, at), host: target.slice(at + 1) };
}

/** The child's document, or a bad_request error saying why it cannot be drawn into. */
function childDocument(child: Window): Document {
  if (child.closed) throw ipnError("bad_request", "openTerminal: childWindow is already closed");
  try {
    return child.document;
  } catch {
    throw ipnError("bad_request", "openTerminal: childWindow is not same-origin with this page (its document is out of reach)");
  }
}

/** Resolves once child shows a document to draw into: the initial about:blank of a window just opened with a URL does not count. */
function childReady(child: Window): Promise<void> {
  const doc = child.document;
  if (doc.URL !== "about:blank" && doc.readyState !== "loading") return Promise.resolve();
  return new Promise((resolve) => {
    // The Window object survives the navigation away from the initial about:blank (same origin).
    const onReady = () => {
      if (child.document.URL === "about:blank" || child.document.readyState === "loading") return;
      child.removeEventListener("load", onReady);
      child.removeEventListener("DOMContentLoaded", onReady);
      resolve();
    };
    child.addEventListener("DOMContentLoaded", onReady);
    child.addEventListener("load", onReady);
  });
}

/** Whether any readable style sheet of doc has rules for xterm's elements. */
function hasXtermRules(doc: Document): boolean {
  return sheetsWithXterm(doc).length > 0;
}

function sheetsWithXterm(doc: Document): CSSStyleSheet[] {
  const found: CSSStyleSheet[] = [];
  const sheets = [...Array.from(doc.styleSheets), ...(doc.adoptedStyleSheets ?? [])];
  for (const sheet of sheets) {
    // The <style> elements xterm puts into each open terminal style that terminal only.
    const owner = sheet.ownerNode;
    if (owner && "closest" in owner && (owner as Element).closest(".xterm")) continue;
    let rules: CSSRuleList;
    try {
      rules = sheet.cssRules;
    } catch {
      continue; // cross-origin without CORS: unreadable
    }
    if (Array.from(rules).some((r) => r.cssText.includes(".xterm"))) found.push(sheet);
  }
  return found;
}

/**
 * Makes xterm's styles present in the child's document: the given stylesheet URL, else
 * nothing if it has them already, else this page's sheets that hold xterm rules (linked
 * by URL, or copied through the CSSOM, which a CSP allows where inline <style> may not be).
 */
async function bringStyles(child: Window, stylesheet: string | URL | undefined): Promise<void> {
  const doc = child.document;
  const links: HTMLLinkElement[] = [];
  const link = (href: string) => {
    const abs = new URL(href, document.baseURI).href;
    if (Array.from(doc.querySelectorAll<HTMLLinkElement>('link[rel="stylesheet"]')).some((l) => l.href === abs)) return;
    const l = doc.createElement("link");
    l.rel = "stylesheet";
    l.href = abs;
    l.dataset["tsconnect"] = "";
    doc.head.append(l);
    links.push(l);
  };
  if (stylesheet !== undefined) {
    link(String(stylesheet));
  } else if (!hasXtermRules(doc)) {
    const sheets = sheetsWithXterm(document);
    if (sheets.length === 0) {
      throw ipnError(
        "bad_request",
        'openTerminal: xterm\'s CSS is neither in the child window nor in this page: import "@xterm/xterm/css/xterm.css" in the page, link it from the child page, or pass options.stylesheet',
      );
    }
    const copied: CSSStyleSheet[] = [];
    for (const s of sheets) {
      if (s.href) {
        link(s.href);
        continue;
      }
      const c = new (child as unknown as typeof globalThis).CSSStyleSheet();
      c.replaceSync(
        Array.from(s.cssRules)
          .filter((r) => !r.cssText.startsWith("@import"))
          .map((r) => r.cssText)
          .join("\n"),
      );
      copied.push(c);
    }
    if (copied.length > 0) doc.adoptedStyleSheets = [...doc.adoptedStyleSheets, ...copied];
  }
  await Promise.all(
    links.map(
      (l) =>
        new Promise<void>((resolve) => {
          l.addEventListener("load", () => resolve(), { once: true });
          l.addEventListener("error", () => resolve(), { once: true });
        }),
    ),
  );
}

/** Makes the child's page a full-window frame for the terminal and returns the element to draw into. */
function childContainer(child: Window, given: HTMLElement | undefined, background: string): HTMLElement {
  const doc = child.document;
  if (given) {
    if (given.ownerDocument !== doc) throw ipnError("bad_request", "openTerminal: options.container is not in childWindow's document");
    return given;
  }
  // Property assignments through the CSSOM, which a style-src CSP allows.
  for (const el of [doc.documentElement, doc.body]) {
    el.style.margin = "0";
    el.style.padding = "0";
    el.style.height = "100%";
    el.style.overflow = "hidden";
    el.style.background = background;
  }
  const el = doc.createElement("div");
  el.dataset["tsconnectTerminal"] = "";
  el.style.width = "100%";
  el.style.height = "100%";
  doc.body.append(el);
  return el;
}

/** Renderer names of software rasterizers, which draw a terminal slower than the DOM does. */
const softwareGL = /swiftshader|llvmpipe|softpipe|software/i;

/**
 * Whether doc's browser gives WebGL2 without a major performance caveat and not from a
 * software rasterizer (Chromium without a GPU offers SwiftShader even to a context created
 * with failIfMajorPerformanceCaveat); the WebGL addon's own context asks neither.
 */
function fastWebGL2(doc: Document): boolean {
  const gl = doc.createElement("canvas").getContext("webgl2", { failIfMajorPerformanceCaveat: true });
  if (!gl) return false;
  const info = gl.getExtension("WEBGL_debug_renderer_info");
  const name = String(gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER));
  gl.getExtension("WEBGL_lose_context")?.loseContext();
  return !softwareGL.test(name);
}

/** The WebGL addon's module, imported on first use (a chunk of its own where the bundle splits). */
let webglModule: Promise<typeof import("@xterm/addon-webgl")> | undefined;

/** Imports @xterm/addon-webgl once; a failed import is tried again by the next terminal. */
function loadWebgl(): Promise<typeof import("@xterm/addon-webgl")> {
  webglModule ??= import("@xterm/addon-webgl").catch((e: unknown) => {
    webglModule = undefined;
    throw e;
  });
  return webglModule;
}

/**
 * Draws term with the WebGL renderer where renderer allows it ("auto": only without a
 * performance caveat; "webgl": even in software), else (or once its context is lost) with
 * xterm.js's DOM renderer, whose rows are text in .xterm-rows. The addon is imported only
 * here, so a page that draws with the DOM renderer never fetches it; until it has arrived
 * (and if it cannot be fetched) the DOM renderer draws. alive says whether term is still open.
 */
function useRenderer(term: Terminal, doc: Document, renderer: API.TerminalRenderer, alive: () => boolean): void {
  if (renderer === "dom" || (renderer === "auto" && !fastWebGL2(doc))) return;
  loadWebgl()
    .then(({ WebglAddon }) => {
      if (!alive()) return;
      const webgl = new WebglAddon();
      // Disposing the addon puts the DOM renderer back.
      webgl.onContextLoss(() => webgl.dispose());
      term.loadAddon(webgl);
    })
    .catch(() => {
      // No WebGL2 context after all, or the addon's chunk did not load: the DOM renderer stays.
    });
}

/** The font sizes Ctrl+Shift+Plus/Minus and setAppearance keep to, in CSS pixels. */
const minFontSize = 8;
const maxFontSize = 32;

/** What a dropped session shows in the terminal when it can reconnect. */
const disconnectedText = "Disconnected — press Enter to reconnect";

/** plain is text without control characters: error messages may quote what a server sent, and go into the terminal. */
function plain(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, " ").slice(0, 500);
}

/** The errors of a dropped connection, after which reconnecting may work. */
const dropped = new Set<string>([
  "session_lost",
  "host_unreachable",
  "relay_unreachable",
  "control_unreachable",
  "node_deleted",
  "timeout",
]);

/**
 * The largest write handed to xterm.js at once. It parses queued writes in a timer task until
 * 12 ms have passed, looking at the clock only between writes, so one large write is one long
 * task (a 1 MiB data message took 100–200 ms here); slices this size parse in 1–2 ms each.
 */
const writeSlice = 16 << 10;

/** Writes data to term in slices of writeSlice bytes; resolves once xterm.js parsed the last. */
function writeSliced(term: Terminal, data: Uint8Array): Promise<void> {
  return new Promise<void>((parsed) => {
    for (let at = 0; at < data.length; at += writeSlice) {
      const end = Math.min(at + writeSlice, data.length);
      term.write(data.subarray(at, end), end === data.length ? parsed : undefined);
    }
    if (data.length === 0) parsed();
  });
}

export const openTerminal: typeof API.openTerminal = (ipn: IPN, target, options: OpenTerminalOptions): TerminalSession => {
  const { host, user } = parseTarget(target);
  const child = options.childWindow ?? undefined;
  if (!child && !options.container) throw ipnError("bad_request", "openTerminal: options.container or options.childWindow is required");
  if (child) childDocument(child);

  // The window showing the terminal: its clipboard, its pop-ups (a click there is its user activation).
  const view = (): Window => term.element?.ownerDocument.defaultView ?? child ?? window;
  const term = new Terminal({
    cursorBlink: true,
    scrollback: 5000,
    // OSC 8 links hide their target behind any text the remote prints: http(s) only, and
    // never followed without the user confirming the real URL, in the window clicked in.
    linkHandler: {
      allowNonHttpProtocols: false,
      activate: (event, uri) => {
        if (options.onLink) return options.onLink(uri, event);
        const w = view();
        if (w.confirm(`The remote machine (${user}@${host}) links to:\n\n${uri}\n\nOpen it?`)) w.open(uri, "_blank", "noopener,noreferrer");
      },
    },
    ...options.terminalOptions,
    allowProposedApi: true,
  });
  // Character widths as the remote's wcwidth counts them (emoji two cells): Unicode 11, not
  // xterm.js's built-in Unicode 6 (its `unicode` API is a proposed one, allowed here only).
  term.loadAddon(new Unicode11Addon());
  term.unicode.activeVersion = "11";
  // The remote may not write the clipboard: OSC 52 is swallowed (even if a clipboard addon is loaded before).
  term.parser.registerOscHandler(52, () => true);
  // Window titles (OSC 0/1/2) are the remote's: never put on this page or its windows.
  const fit = new FitAddon();
  term.loadAddon(fit);
  term.loadAddon(
    new WebLinksAddon((event, uri) => {
      if (options.onLink) return options.onLink(uri, event);
      view().open(uri, "_blank", "noopener,noreferrer");
    }),
  );

  let settle: (r: TerminalResult) => void = () => {};
  const done = new Promise<TerminalResult>((resolve) => (settle = resolve));
  let session: SSHSession | undefined;
  let ended = false;
  let disposed = false;
  const cleanups: (() => void)[] = [];
  // Transfers across a reconnect wait here for the next connected session.
  let live: SSHSession | undefined;
  const waiters = new Set<{ resolve(s: SSHSession): void; reject(e: IPNError): void }>();
  /** How each session ended: with the error of a dropped connection, or undefined. */
  const ends = new WeakMap<SSHSession, Promise<IPNError | undefined>>();
  const finish = (exitCode: number, error?: IPNError) => {
    if (ended) return;
    ended = true;
    for (const w of waiters) w.reject(ipnError("closed", "the terminal's session ended before it reconnected"));
    waiters.clear();
    if (child && !child.closed) child.document.title = `${user}@${host} (ended)`;
    options.onDone?.(exitCode, error);
    settle(error ? { exitCode, error } : { exitCode });
  };
  /** Dropped and waiting for Enter to reconnect (options.reconnect), or reconnecting. */
  let waiting = false;
  let reconnecting = false;
  const close = () => {
    if (waiting || reconnecting) finish(-1, ipnError("closed", "the terminal was closed while disconnected"));
    else if (session) session.close();
    else finish(-1, ipnError("closed", "the terminal was closed before its session started"));
  };

  // What setAppearance changes; refit and paint exist once the terminal is drawn.
  const appearance: { theme: ThemeChoice } = { theme: options.theme ?? "dark" };
  let refit = () => {};
  let paint = () => {};
  const zoom = (step: number) => {
    const size = Math.min(maxFontSize, Math.max(minFontSize, (term.options.fontSize ?? 15) + step));
    if (size === term.options.fontSize) return;
    term.options.fontSize = size;
    refit();
    options.onFontSize?.(size);
  };

  const start = (container: HTMLElement) => {
    const doc = container.ownerDocument;
    let bar: KeyBar | undefined;
    if (wantKeyBar(options.keyBar, doc.defaultView ?? window)) {
      // The terminal and the bar under it share the container; fit measures the terminal's part.
      const wrap = doc.createElement("div");
      Object.assign(wrap.style, { display: "flex", flexDirection: "column", width: "100%", height: "100%" });
      const area = doc.createElement("div");
      Object.assign(area.style, { flex: "1 1 auto", minHeight: "0", width: "100%" });
      bar = makeKeyBar(doc, term, (d) => input(d));
      wrap.append(area, bar.el);
      container.append(wrap);
      cleanups.push(() => wrap.remove());
      term.open(area);
    } else {
      term.open(container);
    }
    const find: FindBar | undefined =
      options.findBar === false ? undefined : makeFindBar(doc, term, term.element?.parentElement ?? container);
    // Ctrl+Shift+F finds; Ctrl+Shift+Plus / Minus change the font size (the browser keeps Ctrl+Plus for zoom).
    term.attachCustomKeyEventHandler((e) => {
      if (e.type !== "keydown" || !e.ctrlKey || !e.shiftKey || e.altKey || e.metaKey) return true;
      if (e.code === "KeyF" && find) find.open();
      else if (e.code === "Equal" || e.code === "NumpadAdd") zoom(1);
      else if (e.code === "Minus" || e.code === "NumpadSubtract") zoom(-1);
      else return true;
      e.preventDefault();
      return false;
    });
    // Light or dark, or following the system's choice (live) in the window showing the terminal.
    const shown = doc.defaultView ?? window;
    const dark = shown.matchMedia?.("(prefers-color-scheme: dark)");
    paint = () => {
      if (options.terminalOptions?.theme) return; // the page chose colors itself
      const colors = themeColors(appearance.theme, dark?.matches ?? true);
      term.options.theme = colors;
      // The box around the terminal's cells (padding) follows, and so does a child window the terminal fills.
      container.style.background = colors.background ?? "#000";
      if (child && !child.closed && !options.container) {
        for (const el of [doc.documentElement, doc.body]) el.style.background = colors.background ?? "#000";
      }
    };
    paint();
    if (dark) {
      const onScheme = () => paint();
      dark.addEventListener("change", onScheme);
      cleanups.push(() => dark.removeEventListener("change", onScheme));
    }
    useRenderer(term, container.ownerDocument, options.renderer ?? "auto", () => !disposed);
    // Test hook: the browser benchmarks' probe (e2e/browser/termprobe.mjs) watches what each terminal draws.
    (globalThis as { __tsconnectTerminalHook?: (t: Terminal) => void }).__tsconnectTerminalHook?.(term);
    refit = () => {
      // Fitting a hidden container would collapse the terminal to its minimum size.
      if (container.clientWidth > 0 && container.clientHeight > 0) fit.fit();
    };
    refit();
    const Observer = (container.ownerDocument.defaultView as (Window & typeof globalThis) | null)?.ResizeObserver ?? ResizeObserver;
    const observer = new Observer(refit);
    observer.observe(container);
    cleanups.push(() => observer.disconnect());

    const encodeBinary = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0) & 0xff);
    const connect = (through: IPN) => {
      let endMine: (dropped: IPNError | undefined) => void = () => {};
      const mine: SSHSession = through.ssh(host, user, {
        rows: term.rows,
        cols: term.cols,
        ...(options.command ? { command: options.command } : {}),
        // Flow control: output not parsed yet by xterm.js holds back the session's credit.
        onData: (data) => writeSliced(term, data),
        onBanner: (text, url) => {
          term.write(text.replace(/\r?\n/g, "\r\n"));
          options.onBanner?.(text, url);
        },
        onConnectionProgress: (text) => options.onConnectionProgress?.(text),
        onConnected: () => {
          live = mine;
          for (const w of waiters) w.resolve(mine);
          waiters.clear();
          term.focus();
          options.onConnected?.();
        },
        onDone: (exitCode: number, error?: IPNError) => {
          if (live === mine) live = undefined;
          endMine(error && dropped.has(error.code) ? error : undefined);
          if (ended || session !== mine) return;
          if (error && options.reconnect && dropped.has(error.code)) {
            waiting = true;
            term.write(`\r\n\x1b[1;33m${disconnectedText}\x1b[0m (${plain(error.message)})\r\n`);
            options.onDisconnected?.(error);
          } else {
            finish(exitCode, error);
          }
        },
      });
      ends.set(mine, new Promise((r) => (endMine = r)));
      session = mine;
    };
    const reconnect = () => {
      if (!options.reconnect || ended) return;
      waiting = false;
      reconnecting = true;
      term.write("Reconnecting…\r\n");
      options.reconnect().then(
        (through) => {
          reconnecting = false;
          if (!ended) connect(through);
        },
        (e: unknown) => {
          reconnecting = false;
          if (ended) return;
          waiting = true;
          term.write(
            `\x1b[1;31mReconnecting failed: ${plain(e instanceof Error ? e.message : String(e))}\x1b[0m — press Enter to try again\r\n`,
          );
        },
      );
    };
    // Keys go to the session; while disconnected, Enter reconnects and the rest is dropped.
    function input(d: string) {
      if (waiting) {
        if (d.includes("\r")) reconnect();
        return;
      }
      if (!reconnecting) session?.write(d);
    }
    connect(ipn);
    const listeners = [
      term.onData((d) => input(bar ? bar.transform(d) : d)),
      term.onBinary((d) => {
        if (!waiting && !reconnecting) session?.write(encodeBinary(d));
      }),
      term.onResize(({ rows, cols }) => session?.resize(rows, cols)),
    ];
    if (options.copyOnSelect ?? true) {
      listeners.push(
        term.onSelectionChange(() => {
          const text = term.getSelection();
          if (text)
            view()
              .navigator.clipboard?.writeText(text)
              .catch(() => {});
        }),
      );
    }
    cleanups.push(() => listeners.forEach((l) => l.dispose()));
  };

  if (!child) {
    start(options.container as HTMLElement);
  } else {
    const title = `${user}@${host}`;
    // Closing the child (or leaving its page) ends the session; so does this page going away.
    const onChildGone = () => close();
    const onParentGone = () => child.close();
    window.addEventListener("pagehide", onParentGone);
    const poll = setInterval(() => {
      if (child.closed) onChildGone();
    }, 500);
    cleanups.push(() => {
      clearInterval(poll);
      window.removeEventListener("pagehide", onParentGone);
      try {
        child.removeEventListener("pagehide", onChildGone);
      } catch {
        // closed
      }
    });
    void done.then(() => clearInterval(poll));
    childReady(child)
      .then(async () => {
        if (ended || disposed) return;
        child.document.title = title;
        child.addEventListener("pagehide", onChildGone);
        await bringStyles(child, options.stylesheet);
        if (ended || disposed) return;
        const bg =
          options.terminalOptions?.theme?.background ??
          themeColors(appearance.theme, child.matchMedia?.("(prefers-color-scheme: dark)").matches ?? true).background ??
          "#000";
        start(childContainer(child, options.container, bg));
      })
      .catch((e: unknown) => {
        const err = e instanceof Error && "code" in e ? (e as IPNError) : ipnError("internal", `openTerminal: ${String(e)}`);
        finish(-1, err);
      });
  }

  const current = (): SSHSession => {
    if (!session || ended) throw ipnError("not_started", "the terminal has no connected session");
    return session;
  };
  /**
   * The drop that err, a transfer's failure on session s, comes from, if the terminal will
   * reconnect: the session's own error, or its SFTP channel breaking as the session drops.
   */
  const droppedBy = async (s: SSHSession, err: unknown): Promise<IPNError | undefined> => {
    if (!options.reconnect || ended) return undefined;
    const code = (err as Partial<IPNError> | undefined)?.code ?? "";
    if (dropped.has(code)) return err as IPNError;
    if (code !== "file_failed" && code !== "closed") return undefined;
    return Promise.race([ends.get(s), new Promise<undefined>((r) => setTimeout(r, 3000))]);
  };
  /** The next session connected after s (the reconnect); rejects when the terminal ends or signal aborts. */
  const nextSession = (s: SSHSession, signal?: AbortSignal): Promise<SSHSession> => {
    if (live && live !== s) return Promise.resolve(live);
    if (ended) return Promise.reject(ipnError("closed", "the terminal's session has ended"));
    return new Promise((resolve, reject) => {
      const w = {
        resolve: (n: SSHSession) => {
          signal?.removeEventListener("abort", abort);
          resolve(n);
        },
        reject,
      };
      const abort = () => {
        waiters.delete(w);
        reject(ipnError("canceled", "the transfer was canceled"));
      };
      if (signal?.aborted) return abort();
      signal?.addEventListener("abort", abort, { once: true });
      waiters.add(w);
    });
  };
  // Transfers that outlive a dropped connection: interrupted, then continued on the session the
  // reconnect makes (a download with a ranged read into the same stream, an upload in its hidden file).
  const files: SSHFiles = {
    list: async (path) => current().files.list(path),
    download: async (path, o = {}) => {
      let s = current();
      const first = await s.files.download(path, o);
      const { size, mtime } = first;
      let got = o.resume?.offset ?? 0;
      let reader = first.stream.getReader();
      const stream = new ReadableStream<Uint8Array>(
        {
          pull: async (c) => {
            for (;;) {
              try {
                const r = await reader.read();
                if (r.done) c.close();
                else {
                  got += r.value.length;
                  c.enqueue(r.value);
                }
                return;
              } catch (e) {
                const why = await droppedBy(s, e);
                if (!why) throw e;
                o.onInterrupted?.(why);
                for (;;) {
                  s = await nextSession(s, o.signal);
                  try {
                    reader = (await s.files.download(path, { ...o, resume: { offset: got, size, mtime } })).stream.getReader();
                    break;
                  } catch (e2) {
                    if (!(await droppedBy(s, e2))) throw e2;
                  }
                }
                o.onResumed?.();
              }
            }
          },
          cancel: (reason) => reader.cancel(reason),
        },
        { highWaterMark: 0 },
      );
      return { size, mtime, stream };
    },
    upload: async (path, data, o = {}) => {
      let s = current();
      const blob = typeof (data as Blob).slice === "function" && typeof (data as Blob).size === "number";
      let hidden = o.resume?.hidden;
      const opts = {
        ...o,
        onOpen: (h: string) => {
          hidden = h;
          o.onOpen?.(h);
        },
      };
      for (let resuming = o.resume !== undefined; ; resuming = true) {
        try {
          await s.files.upload(path, data, resuming && hidden ? { ...opts, resume: { hidden } } : opts);
          return;
        } catch (e) {
          const why = blob && hidden ? await droppedBy(s, e) : undefined;
          if (!why) throw e;
          o.onInterrupted?.(why);
          s = await nextSession(s, o.signal);
          o.onResumed?.();
        }
      }
    },
  };
  return {
    terminal: term,
    done,
    close,
    // The session of the moment (a reconnect makes a new one); transfers continue across it.
    files,
    setAppearance: ({ fontSize, theme }) => {
      if (fontSize !== undefined) {
        term.options.fontSize = Math.min(maxFontSize, Math.max(minFontSize, Math.round(fontSize)));
        refit();
      }
      if (theme !== undefined) {
        appearance.theme = theme;
        paint();
      }
    },
    dispose: () => {
      if (disposed) return;
      disposed = true;
      close();
      for (const c of cleanups) c();
      term.dispose();
      if (child && !child.closed) child.close();
    },
  };
};
