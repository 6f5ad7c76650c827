// SSH sessions of the console: each one its own IPN (Worker + ephemeral node, minted by
// control for this session) and an xterm.js terminal drawn by this page into a child window
// (/admin/term.html, a page without scripts) or, when pop-ups are blocked, inline.

import { createIPN } from "../../../npm/src/index.js";
import { openTerminal } from "../../../npm/src/terminal.js";
import { setupFiles } from "../files.js";
import { rendererParam } from "../renderer.js";
import type { IPN } from "../../../npm/types/index.js";
import type { OpenTerminalOptions, TerminalCallbacks, TerminalSession } from "../../../npm/types/terminal.js";
import { call, message, type NetworkNode, type SSHLaunch } from "./api.js";
import { h, replace } from "./dom.js";
import { termFont, type TermSettings } from "./termsettings.js";

/** The hashed URL of tsconnect.wasm (absolute path); injected by esbuild.config.js. */
declare const __TSCONNECT_WASM_URL__: string;
declare const __TSCONNECT_FILES_WASM_URL__: string;

/** The child-window page: static HTML + CSS, no scripts, no wasm. */
export const termPage = "/admin/term.html";

type State = "opening" | "connecting" | "connected" | "ended" | "failed";

/** One SSH session of this page. */
export class Session {
  static #next = 1;
  readonly id = Session.#next++;
  state: State = "opening";
  status = "Opening…";
  host: string;
  user: string;
  /** The check-mode URL this session waits on while its login is held (check rule), if any. */
  checkURL: string | undefined;
  /** Who must re-authenticate for the held login (from the banner), if it says. */
  checkUser: string | undefined;
  /** Whether the check page could be opened in a window of its own (else only links show it). */
  checkOpened = false;
  #checkWin: Window | null = null;
  #ipn: IPN | undefined;
  #term: TerminalSession | undefined;
  #inline: HTMLElement | undefined;
  #timer: number | undefined;
  #ended = false;

  constructor(
    readonly machine: NetworkNode,
    user: string,
    readonly win: Window | null,
    private readonly mgr: Sessions,
    /** A command to run instead of the login shell (a session link's, after Run). */
    readonly command?: string,
    /** Where the inline terminal goes (a session link's page); default the session list's box. */
    private readonly place?: HTMLElement,
  ) {
    this.host = machine.name;
    this.user = user;
  }

  get label(): string {
    return `${this.user}@${this.host}`;
  }

  get inline(): boolean {
    return this.win === null;
  }

  /** Brings the session's window (or inline terminal) to the front. */
  focus(): void {
    if (this.win && !this.win.closed) this.win.focus();
    else if (this.#inline) {
      this.#inline.scrollIntoView({ block: "nearest" });
      this.#term?.terminal.focus();
    }
  }

  /** Ends the session: SSH, the node (it deletes itself), the Worker and the window. */
  close(): void {
    this.#finish("ended", this.state === "connected" || this.state === "ended" ? "Closed." : "Cancelled.");
    if (this.win && !this.win.closed) this.win.close();
  }

  #set(state: State, status: string) {
    if (this.#ended) return;
    this.state = state;
    this.status = status;
    this.#drawStatus();
    this.mgr.changed();
  }

  /**
   * Draws the status line of the terminal's window (or inline box): the state, and while a
   * check holds the login, a link to the check page (the way in when no window could open).
   */
  #drawStatus() {
    const el = this.#childDoc()?.getElementById("status") ?? this.#inline?.querySelector<HTMLElement>(".term-status");
    if (!el) return;
    el.dataset.state = this.state;
    if (this.checkURL) el.dataset.check = this.checkOpened ? "opened" : "blocked";
    else delete el.dataset.check;
    replace(el, this.status, this.checkURL ? [" ", checkLink(this.checkURL, this.checkUser, this.checkOpened)] : null);
  }

  #childDoc(): Document | undefined {
    try {
      if (this.win && !this.win.closed && this.win.location.pathname === termPage) return this.win.document;
    } catch {
      // A child that navigated away to another origin is not ours to draw into.
    }
    return undefined;
  }

  #finish(state: State, status: string) {
    if (this.#ended) return;
    this.#set(state, status);
    this.#ended = true;
    this.#checkDone();
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#term?.close();
    const ipn = this.#ipn;
    if (ipn) {
      // logout deletes the ephemeral node at once; the Worker goes after it (or after 3 s).
      const stop = () => ipn.dispose();
      const t = setTimeout(stop, 3000);
      ipn
        .logout()
        .catch(() => {})
        .finally(() => {
          clearTimeout(t);
          stop();
        });
    }
    this.mgr.changed();
  }

  /** Runs the session: key from control, a node, a terminal. */
  async start(): Promise<void> {
    if (this.win) {
      // Closing the child ends the session (polled: a closed window fires nothing reliable).
      this.#timer = window.setInterval(() => {
        if (this.win?.closed) this.#finish("ended", "Window closed.");
      }, 250);
    }
    try {
      const ipn = await this.#join();
      if (!ipn) return;
      const opts = await this.#place();
      if (this.#ended || !opts) return;
      this.#term = openTerminal(ipn, { host: this.host, user: this.user }, this.command ? { ...opts, command: this.command } : opts);
      const doc = this.win?.document;
      const termEl = doc?.getElementById("terminal");
      if (doc && termEl) {
        const bar = doc.createElement("div");
        bar.id = "files-bar";
        termEl.before(bar);
        setupFiles(this.#term.files, termEl, bar);
      }
    } catch (e) {
      this.#finish("failed", `Failed: ${message(e)}`);
    }
  }

  /**
   * Joins the network for this session: a fresh single-use key from control (the policy
   * checked again), a node of its own, signed in. Resolves with undefined if the session
   * ended meanwhile.
   */
  async #join(): Promise<IPN | undefined> {
    this.#set("connecting", "Getting a key…");
    const grant = await call<SSHLaunch>("POST", `/nodes/${this.machine.id}/ssh-launch`, { user: this.user });
    this.host = grant.host;
    this.user = grant.user;
    if (this.#ended) return undefined;
    this.#set("connecting", "Loading tsconnect…");
    const ipn = await createIPN({
      controlURL: grant.controlURL,
      authKey: grant.authKey,
      hostname: "console",
      wasmURL: new URL(__TSCONNECT_WASM_URL__, location.href),
      filesWasmURL: new URL(__TSCONNECT_FILES_WASM_URL__, location.href),
      logger: (line) => console.debug(`tsconnect ${this.label}:`, line),
    });
    const old = this.#ipn;
    this.#ipn = ipn;
    if (old) void old.logout().finally(() => old.dispose());
    if (this.#ended) {
      ipn.dispose();
      return undefined;
    }
    ipn.run({ notifyPanicRecover: (msg) => this.#finish("failed", `The tsconnect runtime failed: ${msg}`) });
    this.#set("connecting", "Joining the network…");
    await ipn.login();
    return this.#ended ? undefined : ipn;
  }

  /** Reconnects a dropped session in its terminal (Enter there): a fresh key and node. */
  async #reconnect(): Promise<IPN> {
    try {
      const ipn = await this.#join();
      if (!ipn) throw new Error("the session was closed");
      return ipn;
    } catch (e) {
      this.#set("connecting", `Reconnecting failed: ${message(e)}. Press Enter in the terminal to try again.`);
      throw e;
    }
  }

  /** Restyles the open terminal with the user's settings. */
  restyle(): void {
    const s = this.mgr.settings;
    this.#term?.setAppearance({ fontSize: s.fontSize, theme: s.theme });
  }

  /** Where the terminal goes: the child window once term.html has loaded, else inline. */
  async #place(): Promise<OpenTerminalOptions | undefined> {
    const s = this.mgr.settings;
    const common: TerminalCallbacks = {
      renderer: rendererParam(),
      theme: s.theme,
      terminalOptions: { fontSize: s.fontSize, fontFamily: termFont },
      onFontSize: (px) => this.mgr.setFontSize(px),
      onConnectionProgress: (text) => this.#set("connecting", text),
      onConnected: () => {
        this.#checkDone();
        this.#set("connected", `Connected: ${this.label}`);
        if (this.win && !this.win.closed) this.win.focus();
      },
      onBanner: (text, url) => this.#banner(text, url),
      reconnect: () => this.#reconnect(),
      onDisconnected: () => this.#set("connecting", "Disconnected — press Enter in the terminal to reconnect."),
      onDone: (exitCode, error) => {
        if (error && error.code !== "closed") this.#finish("failed", `${error.message} (${error.code})`);
        else this.#finish("ended", `Session ended (exit code ${exitCode}).`);
      },
    };
    if (!this.win) {
      this.#inline = this.mgr.inlineHost(this, this.place);
      const container = this.#inline.querySelector<HTMLElement>(".term-box");
      if (!container) throw new Error("inline terminal box missing");
      await fontLoaded(document, s.fontSize);
      return { ...common, container };
    }
    const doc = await this.#childLoaded();
    if (!doc) return undefined;
    await fontLoaded(doc, s.fontSize);
    doc.title = this.label;
    this.#drawStatus();
    const container = doc.getElementById("terminal") ?? undefined;
    return { ...common, childWindow: this.win, container };
  }

  /** Resolves with the child's document once term.html has loaded in it. */
  async #childLoaded(): Promise<Document | undefined> {
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (this.#ended || !this.win || this.win.closed) return undefined;
      const doc = this.#childDoc();
      if (doc && doc.readyState === "complete") return doc;
      if (Date.now() > deadline) throw new Error(`the terminal window did not load ${termPage}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /**
   * Check mode: the agent holds the login until its user re-authenticates at a URL on the
   * control server's origin (other URLs are only shown in the terminal, never opened). The
   * page opens it in a window of its own; that is not in a click any more, so a pop-up
   * blocker may refuse it: then the link in the terminal's status line (and in the session
   * list) opens it, a click on a link being always allowed. Once the user approved, the SSH
   * login goes on by itself; the check window is closed then (or when the session ends).
   */
  #banner(text: string, url: string | undefined) {
    // url is set only for control's own check page (the banner rule, npm/src/banner.ts).
    if (this.#ended || !url) return;
    const u = new URL(url);
    if (u.href === this.checkURL) return;
    this.checkURL = u.href;
    this.checkUser = /re-authenticate as (\S+?)\.? Visit:/.exec(text)?.[1];
    const open = this.#checkWin && !this.#checkWin.closed ? this.#checkWin : null;
    let reused = false;
    if (open) {
      try {
        open.location.replace(u.href); // a new URL for the same login (the agent asked again)
        reused = true;
      } catch {
        // not ours to navigate any more: open another
      }
    }
    if (!reused) {
      this.#checkWin = window.open(u.href, `tsconnect-check-${this.id}`, "popup,width=640,height=760");
      // The check window may go on to an identity provider: it gets no handle on this page.
      if (this.#checkWin) this.#checkWin.opener = null;
    }
    this.checkOpened = this.#checkWin !== null;
    const who = this.checkUser ? ` as ${this.checkUser}` : "";
    this.#set(
      "connecting",
      this.checkOpened
        ? `Waiting for you to re-authenticate${who} in the window that opened…`
        : `This login needs you to re-authenticate${who}:`,
    );
  }

  /** The held login was decided (or the session ended): the check window and links go. */
  #checkDone() {
    if (this.#checkWin && !this.#checkWin.closed) this.#checkWin.close();
    this.#checkWin = null;
    if (this.checkURL === undefined) return;
    this.checkURL = undefined;
    this.checkOpened = false;
    this.#drawStatus();
    this.mgr.changed();
  }
}

/**
 * fontLoaded waits (at most 3 s) for the bundled font in doc, so that xterm.js measures its
 * cells with it rather than with the fallback.
 */
async function fontLoaded(doc: Document, px: number): Promise<void> {
  await Promise.race([doc.fonts.load(`${px}px "Cascadia Mono"`).catch(() => []), new Promise((r) => setTimeout(r, 3000))]);
}

/** checkLink is the link to a check page (opens in a new window or tab; no handle on us). */
function checkLink(url: string, user: string | undefined, opened: boolean): HTMLElement {
  const text = opened ? "Open the re-authentication page again" : `Re-authenticate${user ? ` as ${user}` : ""}`;
  return h("a", { class: "check-link", href: url, target: "_blank", rel: "noopener noreferrer" }, text);
}

/** The page's open sessions and their list (an aside present on every page). */
export class Sessions {
  readonly all: Session[] = [];
  /** The signed-in user's terminal settings (termsettings.ts); saved by onSave. */
  settings: TermSettings = { fontSize: 15, theme: "system" };
  onSave: (s: TermSettings) => void = () => {};

  /** Applies new settings to every open terminal (and to new ones). */
  apply(s: TermSettings): void {
    this.settings = s;
    for (const x of this.all) x.restyle();
  }

  /** A terminal's font size was changed there (Ctrl+Shift+Plus/Minus): keep it, and for the others. */
  setFontSize(px: number): void {
    this.apply({ ...this.settings, fontSize: px });
    this.onSave(this.settings);
  }
  readonly listEl = h("ul", { class: "session-list" });
  readonly inlineEl = h("div", { class: "inline-terms" });
  readonly el = h(
    "aside",
    { id: "sessions", "aria-labelledby": "sessions-h", hidden: true },
    h("h2", { id: "sessions-h" }, "Open sessions"),
    this.listEl,
    this.inlineEl,
  );

  /**
   * Opens a session; call it synchronously from the click handler so that pop-up blockers
   * allow the window.
   */
  open(machine: NetworkNode, user: string, command?: string): Session {
    const win = window.open(termPage, "_blank", "popup,width=960,height=600");
    const s = new Session(machine, user, win, this, command);
    this.all.push(s);
    this.changed();
    void s.start();
    return s;
  }

  /**
   * Opens a session whose terminal is drawn in this tab, in place (a session link's page),
   * running command instead of the login shell when given.
   */
  openHere(machine: NetworkNode, user: string, place: HTMLElement, command?: string): Session {
    const s = new Session(machine, user, null, this, command, place);
    this.all.push(s);
    this.changed();
    void s.start();
    return s;
  }

  /** Makes an inline terminal box for s: in place, or in the session list (pop-ups blocked). */
  inlineHost(s: Session, place?: HTMLElement): HTMLElement {
    const box = h(
      "section",
      { class: place ? "inline-term here" : "inline-term", "data-session": s.id, "aria-label": `terminal ${s.label}` },
      place
        ? null
        : h(
            "p",
            { class: "notice", role: "note" },
            "Pop-ups are blocked for this site, so the terminal opens here in the page. Allow pop-ups to get each session in its own window.",
          ),
      h("div", { class: "term-head" }, h("strong", null, s.label), " ", h("span", { class: "term-status", role: "status" }, s.status)),
      h("div", { class: "term-box" }),
    );
    (place ?? this.inlineEl).appendChild(box);
    return box;
  }

  /** Ends every session (logout, page unload). */
  closeAll(): void {
    for (const s of this.all) s.close();
  }

  /** Redraws the list. */
  changed(): void {
    const live = this.all.filter((s) => s.state !== "ended" && s.state !== "failed");
    // Ended sessions stay listed (with why) until dismissed; inline boxes go with them.
    this.el.hidden = this.all.length === 0;
    replace(this.listEl, ...this.all.map((s) => this.#item(s)));
    for (const box of document.querySelectorAll<HTMLElement>(".inline-term")) {
      if (!this.all.some((s) => String(s.id) === box.dataset.session)) box.remove();
    }
    document.title = live.length ? `(${live.length}) tsconnect console` : "tsconnect console";
  }

  #item(s: Session): HTMLElement {
    const ended = s.state === "ended" || s.state === "failed";
    return h(
      "li",
      {
        "data-session": s.id,
        "data-state": s.state,
        "data-check": s.checkURL && !ended ? (s.checkOpened ? "opened" : "blocked") : undefined,
      },
      h("span", { class: "who" }, s.label),
      " ",
      h("span", { class: "owner" }, ownerText(s.machine)),
      " ",
      h("span", { class: `state state-${s.state}` }, s.status),
      s.inline && !ended ? h("span", { class: "badge" }, "inline") : null,
      s.checkURL && !ended ? checkLink(s.checkURL, s.checkUser, s.checkOpened) : null,
      h(
        "span",
        { class: "buttons" },
        ended
          ? h("button", { type: "button", on: { click: () => this.#dismiss(s) } }, "Dismiss")
          : [
              h("button", { type: "button", on: { click: () => s.focus() }, "aria-label": `Show ${s.label}` }, "Show"),
              h("button", { type: "button", on: { click: () => s.close() }, "aria-label": `Close ${s.label}` }, "Close"),
            ],
      ),
    );
  }

  #dismiss(s: Session) {
    const i = this.all.indexOf(s);
    if (i >= 0) this.all.splice(i, 1);
    this.changed();
  }
}

/** The multiplexers the SSH dialog offers to attach to, and the command that attaches (or starts) its session. */
export const attachCommands: Record<string, string> = {
  tmux: "tmux new-session -A -s tsconnect",
  screen: "screen -D -R -S tsconnect",
};

/** attachTool is the multiplexer a machine offers to attach to (tmux before screen), if any. */
export function attachTool(m: NetworkNode): string | undefined {
  return (m.sshTools ?? []).find((t) => t in attachCommands);
}

/** ownerText says whose a machine is: its owner's email or its tags. */
export function ownerText(m: NetworkNode): string {
  if (m.tags.length) return m.tags.join(", ");
  return m.owner ? m.owner.email : "no owner";
}
