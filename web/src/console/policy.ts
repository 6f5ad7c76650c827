// The Access controls page: the policy in a textarea with line numbers; problems are checked
// as you type and shown at their lines; saving a policy with problems is refused.

import { ApiError, call, message, type PolicyDoc, type PolicyProblem } from "./api.js";
import { h, localTime, replace } from "./dom.js";

/** The policy editor. */
export class PolicyPage {
  readonly el: HTMLElement;
  #text = h("textarea", {
    id: "policy-text",
    spellcheck: "false",
    autocomplete: "off",
    wrap: "off",
    rows: 28,
    "aria-label": "Policy (HuJSON)",
    "aria-describedby": "policy-problems",
  });
  #gutter = h("pre", { class: "gutter", "aria-hidden": "true" });
  #problems = h("ul", { id: "policy-problems", class: "problems", "aria-live": "polite" });
  #status = h("p", { class: "policy-status", role: "status" }, "Loading…");
  #save = h("button", { type: "submit", class: "primary" }, "Save");
  #version = 0;
  #bad = new Set<number>();
  #timer: number | undefined;
  #seq = 0;

  constructor() {
    this.#text.addEventListener("input", () => {
      this.#numbers();
      clearTimeout(this.#timer);
      this.#timer = window.setTimeout(() => void this.#validate(), 400);
    });
    this.#text.addEventListener("scroll", () => (this.#gutter.scrollTop = this.#text.scrollTop));
    this.el = h(
      "section",
      { "aria-labelledby": "policy-h" },
      h("h1", { id: "policy-h" }, "Access controls"),
      h(
        "form",
        {
          class: "policy",
          on: {
            submit: (ev) => {
              ev.preventDefault();
              void this.#store();
            },
          },
        },
        h("div", { class: "editor" }, this.#gutter, this.#text),
        this.#problems,
        h("div", { class: "buttons" }, this.#save, h("button", { type: "button", on: { click: () => void this.#load() } }, "Revert")),
        this.#status,
      ),
    );
    void this.#load();
  }

  async #load() {
    try {
      const p = await call<PolicyDoc>("GET", "/policy");
      this.#text.value = p.text;
      this.#show([]);
      this.#loaded(p, "In force");
    } catch (e) {
      this.#status.textContent = message(e);
    }
  }

  #loaded(p: PolicyDoc, what: string) {
    this.#version = p.version;
    this.#status.dataset.version = String(p.version);
    this.#status.textContent = `${what}: version ${p.version}${p.author ? ` by ${p.author}` : ""}${p.time ? `, ${localTime(p.time)}` : ""}.`;
  }

  /** Updates the line numbers, marking lines with problems. */
  #numbers() {
    const n = this.#text.value.split("\n").length;
    const lines: HTMLElement[] = [];
    for (let i = 1; i <= n; i++) lines.push(h("span", { class: this.#bad.has(i) ? "bad" : undefined, "data-line": i }, `${i}\n`));
    replace(this.#gutter, ...lines);
    this.#gutter.scrollTop = this.#text.scrollTop;
  }

  #show(problems: PolicyProblem[]) {
    this.#bad = new Set(problems.map((p) => p.line).filter((l) => l > 0));
    this.#numbers();
    this.#text.setAttribute("aria-invalid", problems.length ? "true" : "false");
    replace(
      this.#problems,
      ...problems.map((p) =>
        h(
          "li",
          { "data-line": p.line },
          p.line > 0
            ? h("button", { type: "button", class: "link", on: { click: () => this.#goto(p) } }, `Line ${p.line}, column ${p.column}`)
            : "Policy",
          ": ",
          p.field ? h("code", null, p.field) : null,
          p.field ? ": " : null,
          p.message,
        ),
      ),
    );
  }

  /** Puts the caret at a problem. */
  #goto(p: PolicyProblem) {
    const lines = this.#text.value.split("\n");
    let off = 0;
    for (let i = 0; i < p.line - 1 && i < lines.length; i++) off += (lines[i]?.length ?? 0) + 1;
    off += Math.max(0, p.column - 1);
    this.#text.focus();
    this.#text.setSelectionRange(off, off);
    const lh = parseFloat(getComputedStyle(this.#text).lineHeight) || 18;
    this.#text.scrollTop = Math.max(0, (p.line - 3) * lh);
  }

  static #problemsOf(e: unknown): PolicyProblem[] | undefined {
    if (e instanceof ApiError && e.code === "bad_policy") {
      const ps = e.body.problems;
      return Array.isArray(ps) && ps.length ? (ps as PolicyProblem[]) : [{ line: 0, column: 0, field: "", message: e.message }];
    }
    return undefined;
  }

  async #validate() {
    const seq = ++this.#seq;
    try {
      await call<{ ok: boolean }>("POST", "/policy/validate", { text: this.#text.value });
      if (seq === this.#seq) this.#show([]);
    } catch (e) {
      if (seq !== this.#seq) return;
      const ps = PolicyPage.#problemsOf(e);
      if (ps) this.#show(ps);
    }
  }

  async #store() {
    clearTimeout(this.#timer);
    this.#seq++;
    this.#save.disabled = true;
    try {
      const p = await call<PolicyDoc>("PUT", "/policy", { text: this.#text.value }, { "If-Match": `"${this.#version}"` });
      this.#show([]);
      this.#loaded(p, "Saved");
      this.#status.dataset.result = "saved";
    } catch (e) {
      if (e instanceof ApiError && e.code === "stale_version") {
        // Someone else saved first: nothing was written; the text here is kept to compare.
        const current = typeof e.body.currentVersion === "number" ? e.body.currentVersion : "another";
        this.#status.dataset.result = "stale";
        this.#status.textContent =
          `Not saved: someone else saved version ${current} after you opened version ${this.#version}. ` +
          "Your text is still here: copy it, press Revert to load their version, and redo your change.";
        return;
      }
      const ps = PolicyPage.#problemsOf(e);
      if (ps) this.#show(ps);
      this.#status.dataset.result = "refused";
      this.#status.textContent = `Not saved: ${ps ? `${ps.length} problem${ps.length === 1 ? "" : "s"} (see above)` : message(e)}. Version ${this.#version} stays in force.`;
    } finally {
      this.#save.disabled = false;
    }
  }
}
