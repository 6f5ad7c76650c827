// The console's terminal settings, kept per user in this browser (localStorage): font size and
// theme (system, light, dark). New sessions start with them; changing them restyles the open ones.

import type { TerminalTheme } from "../../../npm/types/terminal.js";
import { h, modal } from "./dom.js";

/** One user's terminal settings. */
export interface TermSettings {
  fontSize: number;
  theme: TerminalTheme;
}

/** The terminal font: bundled (font.css), with the system's monospace behind it. */
export const termFont = '"Cascadia Mono", ui-monospace, monospace';

const defaults: TermSettings = { fontSize: 15, theme: "system" };
const themes: TerminalTheme[] = ["system", "light", "dark"];

const storageKey = (userID: number) => `tsconnect.terminal.${userID}`;

/** loadSettings reads a user's settings (the defaults where none or bad ones are stored). */
export function loadSettings(userID: number): TermSettings {
  try {
    const v = JSON.parse(localStorage.getItem(storageKey(userID)) ?? "{}") as Partial<TermSettings>;
    return {
      fontSize: Number.isInteger(v.fontSize) && v.fontSize! >= 8 && v.fontSize! <= 32 ? v.fontSize! : defaults.fontSize,
      theme: themes.includes(v.theme as TerminalTheme) ? (v.theme as TerminalTheme) : defaults.theme,
    };
  } catch {
    return { ...defaults };
  }
}

/** saveSettings keeps a user's settings in this browser. */
export function saveSettings(userID: number, s: TermSettings): void {
  try {
    localStorage.setItem(storageKey(userID), JSON.stringify(s));
  } catch {
    // Storage full or denied: the settings last for this page only.
  }
}

/** settingsDialog lets the user change s; resolves with the new settings, or undefined when cancelled. */
export function settingsDialog(s: TermSettings): Promise<TermSettings | undefined> {
  const size = h("input", {
    type: "number",
    name: "fontSize",
    id: "term-font-size",
    min: 8,
    max: 32,
    step: 1,
    value: s.fontSize,
    required: true,
  });
  const names: Record<TerminalTheme, string> = { system: "Follow the system", light: "Light", dark: "Dark" };
  return modal<TermSettings | undefined>(
    "Terminal settings",
    (close) => {
      const form = h(
        "form",
        {
          class: "term-settings",
          on: {
            submit: (ev) => {
              ev.preventDefault();
              const theme = form.querySelector<HTMLInputElement>("input[name=theme]:checked")?.value as TerminalTheme;
              const px = Math.round(Number(size.value));
              if (!(px >= 8 && px <= 32)) return;
              close({ fontSize: px, theme: themes.includes(theme) ? theme : s.theme });
            },
          },
        },
        h("h2", null, "Terminal settings"),
        h("label", { for: "term-font-size" }, "Font size (px)"),
        size,
        h(
          "fieldset",
          null,
          h("legend", null, "Theme"),
          themes.map((t) =>
            h(
              "label",
              { class: "theme-choice" },
              h("input", { type: "radio", name: "theme", value: t, checked: t === s.theme }),
              " ",
              names[t],
            ),
          ),
        ),
        h("p", { class: "help" }, "In a terminal: Ctrl+Shift+F finds in the scrollback, Ctrl+Shift+Plus and Minus change the font size."),
        h(
          "div",
          { class: "buttons" },
          h("button", { type: "button", on: { click: () => close(undefined) } }, "Cancel"),
          h("button", { type: "submit", class: "primary" }, "Save"),
        ),
      );
      return [form];
    },
    undefined,
  );
}
