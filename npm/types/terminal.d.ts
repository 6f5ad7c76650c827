/**
 * @tsconnect/connect/terminal — an SSH session drawn by xterm.js (peer dependencies
 * `@xterm/xterm`, `@xterm/addon-fit`, `@xterm/addon-unicode11`, `@xterm/addon-web-links`,
 * `@xterm/addon-search` and `@xterm/addon-webgl`; include
 * `@xterm/xterm/css/xterm.css` in the page). Copy on select, paste and clickable links work.
 */
import type { ITerminalOptions, Terminal } from "@xterm/xterm";
import type { IPN, IPNError, SSHFiles, SSHOptions } from "./index.js";

/** Whom to log in as, where: `{host, user}` or `"user@host"`. */
export type TerminalTarget = string | { host: string; user: string };

/**
 * How the terminal is drawn: `"auto"` with WebGL (`@xterm/addon-webgl`) where the browser has
 * WebGL2 without a major performance caveat and not from a software rasterizer (SwiftShader,
 * llvmpipe), else with
 * xterm.js's DOM renderer; `"dom"` always the DOM renderer; `"webgl"` with WebGL even in software.
 * WebGL falls back to the DOM renderer if it cannot start or loses its context.
 */
export type TerminalRenderer = "auto" | "dom" | "webgl";

/** The terminal's colors: see {@link TerminalCallbacks.theme}. */
export type TerminalTheme = "dark" | "light" | "system";

/** Options of {@link openTerminal} common to both places a terminal can be drawn. */
export interface TerminalCallbacks {
  /** Options for the xterm.js Terminal (font, theme, ...). */
  terminalOptions?: ITerminalOptions;
  /** How the terminal is drawn; default `"auto"`. */
  renderer?: TerminalRenderer;
  /**
   * Colors: `"dark"` (the default: xterm.js's colors on black), `"light"` (dark text on white), or
   * `"system"`, following the window's `prefers-color-scheme`, live. `terminalOptions.theme`, if
   * given, wins.
   */
  theme?: TerminalTheme;
  /**
   * Find in the scrollback: Ctrl+Shift+F opens a bar over the terminal (@xterm/addon-search) that
   * highlights the matches and says "n of m"; Enter / Shift+Enter step, Escape closes. Default true.
   */
  findBar?: boolean;
  /** Called when the user changed the font size with Ctrl+Shift+Plus or Minus (8 to 32 px), to keep it. */
  onFontSize?(px: number): void;
  /** A command to run instead of the login shell, as {@link SSHOptions.command}. */
  command?: string;
  /**
   * A bar of the keys a phone's soft keyboard lacks under the terminal (Esc, Tab, Ctrl, Alt, the
   * arrows, `|`, `~`, `/`; Ctrl and Alt apply to the next key, so Ctrl then C sends ^C).
   * `"auto"` (the default) shows it when the window has a touch screen.
   */
  keyBar?: boolean | "auto";
  /** Copy the selection to the clipboard of the window showing the terminal as soon as it is made. Default true. */
  copyOnSelect?: boolean;
  /**
   * Called when a link (http or https) in the output is clicked. Default: open it in a new tab of the
   * window showing the terminal, without opener or referrer.
   */
  onLink?(uri: string, event: MouseEvent): void;
  /**
   * Reconnecting in place. When the connection drops (the session ends with `session_lost`,
   * `host_unreachable`, `relay_unreachable`, `control_unreachable`, `node_deleted` or `timeout`)
   * the terminal shows "Disconnected — press Enter to reconnect"; Enter calls this for the IPN to
   * reconnect through (the same one, or a new node with a fresh key) and opens the session again
   * in the same terminal, scrollback kept; a rejection is shown and Enter tries again. A
   * `command` (e.g. `tmux new -A -s main`) runs again, so a multiplexer resumes the same shell.
   * Without it a dropped session ends.
   */
  reconnect?(): Promise<IPN>;
  /** Called when the connection dropped and the terminal waits for Enter (with `reconnect` set). */
  onDisconnected?(error: IPNError): void;
  /** Receives connection steps. */
  onConnectionProgress?(text: string): void;
  /** Receives authentication banners (they are also written into the terminal); `url` as in {@link SSHOptions.onBanner}. */
  onBanner?(text: string, url?: string): void;
  /** Called once the shell runs. */
  onConnected?(): void;
  /** Called once at the end, as {@link SSHOptions.onDone}. */
  onDone?(exitCode: number, error?: IPNError): void;
}

/** Draw the terminal into an element of this page. */
export interface ContainerOptions extends TerminalCallbacks {
  /** Element the terminal fills; it is refitted (and the PTY resized) whenever the element's size changes. */
  container: HTMLElement;
  childWindow?: undefined;
  stylesheet?: undefined;
}

/**
 * Draw the terminal into a same-origin child window (from `window.open`), which needs no
 * scripts of its own: the Terminal, the SSH session and the Go runtime stay in this page.
 * If the child still shows the initial about:blank of `window.open(url)`, drawing waits for
 * its page to load (so a window opened without a URL is not supported). The terminal fills
 * the child window (or `container`) and follows its resizes; the child's title becomes
 * `user@host`; closing the child, or its page going away, ends the session; this page going
 * away closes the child.
 */
export interface ChildWindowOptions extends TerminalCallbacks {
  /** The window to draw into; same origin as this page. */
  childWindow: Window;
  /** Element of the child's document to fill. Default: a new element filling the child's body. */
  container?: HTMLElement;
  /**
   * URL of xterm.css (or a sheet that includes it) to link into the child's document. Default: nothing
   * if the child's page already has xterm's rules, else this page's style sheets that hold them are
   * linked (by their URL) or copied (through the CSSOM, which a CSP without 'unsafe-inline' allows).
   */
  stylesheet?: string | URL;
}

/** Options of {@link openTerminal}: `container` or `childWindow`. */
export type OpenTerminalOptions = ContainerOptions | ChildWindowOptions;

/** How a terminal session ended. */
export interface TerminalResult {
  /** Exit code of the remote shell, or -1 when it ended without one. */
  exitCode: number;
  /** Why the session failed or ended without an exit code. */
  error?: IPNError;
}

/** A terminal showing an SSH session. */
export interface TerminalSession {
  /** The xterm.js terminal. */
  readonly terminal: Terminal;
  /** Settles (never rejects) when the session ends. */
  readonly done: Promise<TerminalResult>;
  /** Ends the SSH session; the terminal stays on screen. */
  close(): void;
  /** File transfer on the terminal's current session (after a reconnect, the new one). */
  readonly files: SSHFiles;
  /** Changes the font size (8 to 32 px; the terminal refits) and the theme while it runs. */
  setAppearance(appearance: { fontSize?: number; theme?: TerminalTheme }): void;
  /** Ends the session and removes the terminal and its listeners (and closes the child window, if any). */
  dispose(): void;
}

/**
 * Opens an xterm.js terminal in `options.container` or `options.childWindow` running an SSH
 * session to `target` through `ipn`. Throws an IPNError `"bad_request"` for a malformed target,
 * a missing container/child or a closed or cross-origin child; later failures settle `done`.
 */
export function openTerminal(ipn: IPN, target: TerminalTarget, options: OpenTerminalOptions): TerminalSession;
