// The filter form the Recordings and Audit pages share: user, machine, a range of local days,
// any more fields a page adds, and Search.

import { h, type Child } from "./dom.js";

/** What the shared fields hold: trimmed text (undefined when empty) and the days as times. */
export interface FilterValues {
  user?: string;
  machine?: string;
  /** The From day's local midnight (ms since the epoch), inclusive. */
  from?: number;
  /** The midnight after the To day (ms since the epoch), exclusive. */
  to?: number;
}

/** filterForm is the form with the shared fields, then extra, then Search, which calls search. */
export function filterForm(search: () => void, ...extra: Child[]): HTMLFormElement {
  const field = (name: string, label: string, type = "text") =>
    h("label", null, label, h("input", { name, type, class: `filter-${name}`, autocomplete: "off" }));
  return h(
    "form",
    { class: "filters", on: { submit: (ev) => (ev.preventDefault(), search()) } },
    field("user", "User"),
    field("machine", "Machine"),
    field("from", "From", "date"),
    field("to", "To", "date"),
    extra,
    h("button", { type: "submit" }, "Search"),
  );
}

/** fieldValue is the trimmed value of form's field name ("" when it has none). */
export function fieldValue(form: HTMLFormElement, name: string): string {
  const el = form.elements.namedItem(name) as HTMLInputElement | HTMLSelectElement | null;
  return el?.value.trim() ?? "";
}

/** filterValues reads the shared fields of a filterForm. */
export function filterValues(form: HTMLFormElement): FilterValues {
  const v = (n: string) => fieldValue(form, n);
  const day = (d: string, add: number) => (d ? Date.parse(`${d}T00:00:00`) + add * 86400_000 : undefined);
  return { user: v("user") || undefined, machine: v("machine") || undefined, from: day(v("from"), 0), to: day(v("to"), 1) };
}
