// The key bar of a terminal on a touch screen: the keys a phone's soft keyboard lacks (Esc, Tab,
// Ctrl, Alt, arrows, | ~ /). Ctrl and Alt are sticky: tapped, they apply to the next key from
// the soft keyboard or the bar (Ctrl then C sends ^C). Taps never take the focus from the
// terminal, so the soft keyboard stays open.

import type { Terminal } from "@xterm/xterm";

/** A key bar drawn under a terminal. */
export interface KeyBar {
  /** The bar's element (a toolbar of buttons). */
  readonly el: HTMLElement;
  /** Applies the sticky modifiers to input from the terminal (the soft keyboard) and releases them. */
  transform(data: string): string;
}

/** Whether a key bar is wanted in view: `"auto"` when the window has a touch screen. */
export function wantKeyBar(option: boolean | "auto" | undefined, view: Window): boolean {
  if (option === true || option === false) return option;
  return view.matchMedia?.("(pointer: coarse)").matches === true || (view.navigator.maxTouchPoints ?? 0) > 0;
}

/** ctrl is what Ctrl held with c sends (c itself when Ctrl does nothing to it). */
function ctrl(c: string): string {
  if (c.length !== 1) return c;
  const code = c.toUpperCase().charCodeAt(0);
  if (code >= 0x40 && code <= 0x5f) return String.fromCharCode(code & 0x1f); // @, A-Z, [ \ ] ^ _
  if (c === " ") return "\x00";
  if (c === "?") return "\x7f";
  return c;
}

type Mod = "ctrl" | "alt";

/** makeKeyBar builds the bar in doc for term; send writes bytes to the session. */
export function makeKeyBar(doc: Document, term: Terminal, send: (data: string) => void): KeyBar {
  const held = new Set<Mod>();
  const mods = new Map<Mod, HTMLButtonElement>();
  const el = doc.createElement("div");
  el.className = "tsconnect-keybar";
  el.setAttribute("role", "toolbar");
  el.setAttribute("aria-label", "Terminal keys");
  // Property assignments through the CSSOM, which a style-src CSP allows.
  Object.assign(el.style, {
    display: "flex",
    gap: "3px",
    padding: "3px",
    overflowX: "auto",
    background: "#1b1d22",
    flex: "0 0 auto",
    boxSizing: "border-box",
    width: "100%",
  });

  const apply = (data: string): string => {
    if (held.size === 0) return data;
    let out = held.has("ctrl") ? ctrl(data) : data;
    if (held.has("alt")) out = "\x1b" + out;
    held.clear();
    for (const b of mods.values()) {
      b.setAttribute("aria-pressed", "false");
      b.style.background = "#30343c";
    }
    return out;
  };
  const arrow = (k: string) => (term.modes.applicationCursorKeysMode ? "\x1bO" : "\x1b[") + k;

  const keys: [label: string, name: string, act: () => void][] = [
    ["Esc", "Escape", () => send(apply("\x1b"))],
    ["Tab", "Tab", () => send(apply("\t"))],
    ["Ctrl", "Control", () => toggle("ctrl")],
    ["Alt", "Alt", () => toggle("alt")],
    ["←", "Left", () => send(apply(arrow("D")))],
    ["↑", "Up", () => send(apply(arrow("A")))],
    ["↓", "Down", () => send(apply(arrow("B")))],
    ["→", "Right", () => send(apply(arrow("C")))],
    ["|", "Pipe", () => send(apply("|"))],
    ["~", "Tilde", () => send(apply("~"))],
    ["/", "Slash", () => send(apply("/"))],
  ];
  const toggle = (m: Mod) => {
    const on = !held.has(m);
    if (on) held.add(m);
    else held.delete(m);
    const b = mods.get(m);
    b?.setAttribute("aria-pressed", String(on));
    if (b) b.style.background = on ? "#2f66e0" : "#30343c";
  };
  for (const [label, name, act] of keys) {
    const b = doc.createElement("button");
    b.type = "button";
    b.textContent = label;
    b.setAttribute("aria-label", name);
    b.dataset["key"] = name;
    Object.assign(b.style, {
      // Eleven keys share the width: all of them fit a 360 px phone.
      flex: "1 1 0",
      minWidth: "0",
      height: "2.6em",
      padding: "0",
      font: "14px system-ui, sans-serif",
      color: "#eef0f4",
      background: "#30343c",
      border: "1px solid #4a4f5a",
      borderRadius: "4px",
      touchAction: "manipulation",
    });
    if (name === "Control" || name === "Alt") {
      b.setAttribute("aria-pressed", "false");
      mods.set(name === "Control" ? "ctrl" : "alt", b);
    }
    // Keep the focus (and the soft keyboard) on the terminal.
    b.addEventListener("pointerdown", (e) => e.preventDefault());
    b.addEventListener("mousedown", (e) => e.preventDefault());
    b.addEventListener("click", () => {
      act();
      term.focus();
    });
    el.append(b);
  }
  return { el, transform: apply };
}
