// What the Keys and Users pages share: a table body reloaded from the API, an error line,
// and confirmed actions that reload the list afterwards.

import { message } from "./api.js";
import { confirmDialog, h, replace } from "./dom.js";

/** A page listing items of type T in a table body. */
export abstract class ListPage<T> {
  protected readonly body = h("tbody");
  protected readonly error = h("p", { class: "error", role: "alert", hidden: true });

  /** Fetches the items. */
  protected abstract fetch(): Promise<T[]>;
  /** Draws one item as a table row. */
  protected abstract row(item: T): HTMLTableRowElement;

  /** Shows text on the error line. */
  protected fail(text: string) {
    this.error.hidden = false;
    this.error.textContent = text;
  }

  /** Refetches the items and redraws the table; a failure goes to the error line. */
  protected async load() {
    try {
      replace(this.body, ...(await this.fetch()).map((x) => this.row(x)));
    } catch (e) {
      this.fail(message(e));
    }
  }

  /** Runs action (after a yes to question, when given), then reloads; a failure goes to the error line. */
  protected async act(action: () => Promise<unknown>, question?: string, yes?: string) {
    if (question !== undefined && !(await confirmDialog(question, yes))) return;
    try {
      await action();
      await this.load();
    } catch (e) {
      this.fail(message(e));
    }
  }
}
