// Find in the scrollback: Ctrl+Shift+F opens a small bar over the terminal (@xterm/addon-search)
// that highlights every match, says "n of m", and steps with Enter / Shift+Enter; Escape
// closes it and gives the focus back to the terminal.

import { SearchAddon, type ISearchOptions } from "@xterm/addon-search";
import type { Terminal } from "@xterm/xterm";

/** The find bar of one terminal. */
export interface FindBar {
  /** Opens the bar (focused, its text selected). */
  open(): void;
  /** Closes it and clears the highlights. */
  close(): void;
}

const decorations: ISearchOptions["decorations"] = {
  matchBackground: "#5c4b00",
  activeMatchBackground: "#d08a00",
  matchOverviewRuler: "#a0a0a0",
  activeMatchColorOverviewRuler: "#ffb000",
};

/** makeFindBar adds a find bar for term over area (an element of doc holding the terminal). */
export function makeFindBar(doc: Document, term: Terminal, area: HTMLElement): FindBar {
  const search = new SearchAddon({ highlightLimit: 5000 });
  term.loadAddon(search);
  if (doc.defaultView?.getComputedStyle(area).position === "static") area.style.position = "relative";

  const bar = doc.createElement("div");
  bar.className = "tsconnect-find";
  bar.setAttribute("role", "search");
  bar.hidden = true;
  Object.assign(bar.style, {
    position: "absolute",
    top: "4px",
    right: "16px",
    zIndex: "10",
    display: "none",
    gap: "4px",
    alignItems: "center",
    padding: "4px 6px",
    background: "#2a2d34",
    color: "#eef0f4",
    border: "1px solid #4a4f5a",
    borderRadius: "4px",
    font: "13px system-ui, sans-serif",
  });
  const input = doc.createElement("input");
  input.type = "search";
  input.setAttribute("aria-label", "Find in the terminal");
  input.placeholder = "Find";
  Object.assign(input.style, { width: "12em", font: "inherit" });
  const count = doc.createElement("span");
  count.className = "tsconnect-find-count";
  count.setAttribute("role", "status");
  Object.assign(count.style, { minWidth: "5.5em", textAlign: "center" });
  const button = (label: string, name: string, act: () => void) => {
    const b = doc.createElement("button");
    b.type = "button";
    b.textContent = label;
    b.setAttribute("aria-label", name);
    b.addEventListener("click", act);
    return b;
  };
  const next = () => void search.findNext(input.value, { decorations, incremental: false });
  const prev = () => void search.findPrevious(input.value, { decorations });
  const close = () => {
    bar.hidden = true;
    bar.style.display = "none";
    search.clearDecorations();
    term.focus();
  };
  bar.append(input, count, button("↑", "Previous match", prev), button("↓", "Next match", next), button("✕", "Close find", close));
  area.append(bar);

  search.onDidChangeResults(({ resultIndex, resultCount }) => {
    if (!input.value) count.textContent = "";
    else if (resultCount === 0) count.textContent = "No matches";
    else if (resultIndex < 0) count.textContent = `${resultCount}+ matches`;
    else count.textContent = `${resultIndex + 1} of ${resultCount}`;
  });
  input.addEventListener("input", () => {
    if (input.value) search.findNext(input.value, { decorations, incremental: true });
    else {
      search.clearDecorations();
      count.textContent = "";
    }
  });
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter") {
      e.preventDefault();
      if (e.shiftKey) prev();
      else next();
    } else if (e.key === "Escape") {
      e.preventDefault();
      close();
    }
  });
  const open = () => {
    bar.hidden = false;
    bar.style.display = "flex";
    const sel = term.getSelection();
    if (sel && !sel.includes("\n")) input.value = sel;
    input.focus();
    input.select();
    if (input.value) next();
  };
  return { open, close };
}
