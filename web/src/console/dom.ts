// Building DOM nodes without HTML parsing: every string becomes a text node or an attribute
// value, so names a node reports (hostnames, OS, tags) can never turn into markup.

/** A child of h(): nodes, strings (as text) or nothing. */
export type Child = Node | string | number | null | undefined | false | Child[];

/** Attributes of h(): strings become attributes, booleans toggle them, `on` adds listeners. */
export interface Attrs {
  [name: string]: string | number | boolean | undefined | null | Record<string, EventListener>;
  on?: Record<string, EventListener>;
}

/** h makes an element with attributes and children; never parses HTML. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs | null = null,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [name, v] of Object.entries(attrs)) {
      if (name === "on") {
        for (const [ev, fn] of Object.entries(v as Record<string, EventListener>)) el.addEventListener(ev, fn);
      } else if (v === true) {
        el.setAttribute(name, "");
      } else if (v !== false && v !== null && v !== undefined) {
        if (/^on/i.test(name)) throw new Error(`h: inline handler attribute ${name} is not allowed`);
        el.setAttribute(name, String(v));
      }
    }
  }
  append(el, children);
  return el;
}

/** append adds children (strings as text nodes) to parent. */
export function append(parent: Node, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(parent, c);
    else parent.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
  }
}

/** replace swaps all children of parent for the given ones. */
export function replace(parent: Node, ...children: Child[]): void {
  while (parent.firstChild) parent.removeChild(parent.firstChild);
  append(parent, children);
}

/** headedTable is a table with a header row of columns (each a th of scope col; empty ones left out) over body. */
export function headedTable(columns: Child[], body: HTMLTableSectionElement, attrs: Attrs | null = null): HTMLTableElement {
  const cols = columns.filter((c) => c !== null && c !== undefined && c !== false);
  return h(
    "table",
    attrs,
    h(
      "thead",
      null,
      h(
        "tr",
        null,
        cols.map((c) => h("th", { scope: "col" }, c)),
      ),
    ),
    body,
  );
}

/** bytes renders a byte count for people. */
export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1 << 20) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1 << 30) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  return `${(n / (1 << 30)).toFixed(2)} GiB`;
}

/** duration renders a length of time in milliseconds for people: "42 s", "5 min 3 s", "2 h 7 min". */
export function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor(s / 60) % 60} min`;
}

/** ago renders an RFC 3339 time as "5 min ago" (the exact time goes in a title). */
export function ago(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return "never";
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  const s = Math.round((now - t) / 1000);
  if (s < 0) return in_(-s);
  if (s < 45) return "just now";
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

function in_(s: number): string {
  if (s < 3600) return `in ${Math.max(1, Math.round(s / 60))} min`;
  if (s < 86400) return `in ${Math.round(s / 3600)} h`;
  return `in ${Math.round(s / 86400)} d`;
}

/** localTime formats an RFC 3339 time for people. */
export function localTime(iso: string | null | undefined): string {
  if (!iso) return "";
  const t = new Date(iso);
  return Number.isNaN(t.getTime()) ? iso : t.toLocaleString();
}

/** modal shows a <dialog> built by build(close) and resolves with what close was given. */
export function modal<T>(label: string, build: (close: (v: T) => void) => Child[], cancelValue: T): Promise<T> {
  return new Promise((resolve) => {
    const dlg = h("dialog", { "aria-label": label });
    let done = false;
    const close = (v: T) => {
      if (done) return;
      done = true;
      dlg.close();
      dlg.remove();
      resolve(v);
    };
    dlg.addEventListener("cancel", (e) => {
      e.preventDefault();
      close(cancelValue);
    });
    append(dlg, build(close));
    document.body.appendChild(dlg);
    dlg.showModal();
  });
}

/** confirmDialog asks a yes/no question in a modal dialog (no window.confirm). */
export function confirmDialog(question: string, yes = "OK"): Promise<boolean> {
  return modal<boolean>(
    "Confirm",
    (close) => [
      h("p", null, question),
      h(
        "div",
        { class: "buttons" },
        h("button", { type: "button", on: { click: () => close(false) } }, "Cancel"),
        h("button", { type: "button", class: "danger", autofocus: true, on: { click: () => close(true) } }, yes),
      ),
    ],
    false,
  );
}

/**
 * showSecretOnce fills box with a secret the server shows only this once (a new key or API
 * token), with Copy and Done; Done empties and hides box.
 */
export function showSecretOnce(box: HTMLElement, what: string, secret: string): void {
  const done = () => {
    replace(box);
    box.hidden = true;
  };
  replace(
    box,
    h("p", null, `The new ${what} (shown only this once; copy it now):`),
    h("code", { class: "secret-value" }, secret),
    " ",
    h("button", { type: "button", on: { click: () => void navigator.clipboard?.writeText(secret) } }, "Copy"),
    " ",
    h("button", { type: "button", on: { click: done } }, "Done"),
  );
  box.hidden = false;
}
