// The terminal's two color themes, and "system", which follows the window's
// prefers-color-scheme.

import type { ITheme } from "@xterm/xterm";

/** A theme choice of openTerminal and setAppearance. */
export type ThemeChoice = "dark" | "light" | "system";

/** Dark: xterm.js's own colors on black (what the terminal always had). */
const dark: ITheme = { background: "#000000", foreground: "#ffffff", cursor: "#ffffff", cursorAccent: "#000000" };

/** Light: dark text on white, with ANSI colors dark enough to read on it (yellow included). */
const light: ITheme = {
  background: "#ffffff",
  foreground: "#1c2230",
  cursor: "#1c2230",
  cursorAccent: "#ffffff",
  selectionBackground: "#b7d3f7",
  black: "#1c2230",
  red: "#b3261e",
  green: "#1e6b30",
  yellow: "#7a5400",
  blue: "#2456c7",
  magenta: "#8a3fb8",
  cyan: "#0f6e7a",
  white: "#5a6272",
  brightBlack: "#4b5263",
  brightRed: "#d0342c",
  brightGreen: "#2a8a42",
  brightYellow: "#946800",
  brightBlue: "#2f66e0",
  brightMagenta: "#a04fd0",
  brightCyan: "#15879a",
  brightWhite: "#7b8394",
};

/** themeColors is the palette of choice, with the system's dark preference given. */
export function themeColors(choice: ThemeChoice, systemDark: boolean): ITheme {
  if (choice === "system") return systemDark ? dark : light;
  return choice === "light" ? light : dark;
}
