// The Keys page: pre-auth keys (admins see all, members their own), create one (the secret
// is shown once), revoke; and API tokens (apitokens.ts).

import { call, type AuthKey, type User } from "./api.js";
import { APITokensSection } from "./apitokens.js";
import { h, localTime, showSecretOnce } from "./dom.js";
import { ListPage } from "./listpage.js";

/** The keys list and the form making new ones. */
export class KeysPage extends ListPage<AuthKey> {
  readonly el: HTMLElement;
  #secret = h("div", { class: "secret", hidden: true, "aria-live": "polite" });
  #newID = 0;

  constructor(private readonly me: User) {
    super();
    const reusable = h("input", { type: "checkbox", name: "reusable" });
    const ephemeral = h("input", { type: "checkbox", name: "ephemeral" });
    const tags = h("input", { type: "text", name: "tags", placeholder: "tag:server, tag:db", size: 30 });
    const description = h("input", { type: "text", name: "description", size: 30 });
    const expiry = h(
      "select",
      { name: "expiry" },
      h("option", { value: "3600" }, "1 hour"),
      h("option", { value: "86400", selected: true }, "1 day"),
      h("option", { value: "604800" }, "7 days"),
      h("option", { value: "2592000" }, "30 days"),
      h("option", { value: "7776000" }, "90 days"),
    );
    const create = async (ev: Event) => {
      ev.preventDefault();
      this.error.hidden = true;
      await this.act(async () => {
        const r = await call<{ key: AuthKey; secret: string }>("POST", "/keys", {
          reusable: reusable.checked,
          ephemeral: ephemeral.checked,
          tags: tags.value.split(/[\s,]+/).filter(Boolean),
          expiresIn: Number(expiry.value),
          description: description.value,
        });
        this.#newID = r.key.id;
        showSecretOnce(this.#secret, "key", r.secret);
      });
    };
    this.el = h(
      "section",
      { "aria-labelledby": "keys-h" },
      h("h1", { id: "keys-h" }, "Keys"),
      h(
        "form",
        { class: "new-key", on: { submit: (ev) => void create(ev) } },
        h("h2", null, "New pre-auth key"),
        h("label", null, reusable, " Reusable (registers any number of machines)"),
        h("label", null, ephemeral, " Ephemeral (machines are removed when they go offline)"),
        h("label", null, "Tags ", tags),
        h("label", null, "Expires after ", expiry),
        h("label", null, "Description ", description),
        h("div", { class: "buttons" }, h("button", { type: "submit", class: "primary" }, "Create key")),
      ),
      this.#secret,
      this.error,
      h(
        "table",
        { class: "keys" },
        h(
          "thead",
          null,
          h(
            "tr",
            null,
            ...["Key", "Owner or tags", "Kind", "Created", "Expires", "State"].map((t) => h("th", { scope: "col" }, t)),
            h("th", { scope: "col" }, h("span", { class: "sr-only" }, "Actions")),
          ),
        ),
        this.body,
      ),
      new APITokensSection(me).el,
    );
    void this.load();
  }

  protected async fetch(): Promise<AuthKey[]> {
    return (await call<{ keys: AuthKey[] }>("GET", "/keys")).keys;
  }

  protected row(k: AuthKey): HTMLTableRowElement {
    const kind = [k.reusable ? "reusable" : "single-use", k.ephemeral ? "ephemeral" : null].filter(Boolean).join(", ");
    const state = k.revoked ? "revoked" : Date.parse(k.expires) < Date.now() ? "expired" : k.used && !k.reusable ? "used" : "valid";
    const mayRevoke = !k.revoked && (this.me.role === "admin" || k.owner?.id === this.me.id);
    return h(
      "tr",
      { "data-key": k.id, class: k.id === this.#newID ? "new" : undefined },
      h("td", null, h("code", null, k.prefix), k.description ? h("div", { class: "help" }, k.description) : null),
      h("td", null, k.tags.length ? k.tags.map((t) => h("span", { class: "tag" }, t)) : (k.owner?.email ?? "")),
      h("td", null, kind),
      h("td", null, localTime(k.created)),
      h("td", null, localTime(k.expires)),
      h("td", null, state),
      h(
        "td",
        null,
        mayRevoke
          ? h(
              "button",
              {
                type: "button",
                class: "danger",
                "aria-label": `Revoke key ${k.prefix}`,
                on: {
                  click: () =>
                    void this.act(
                      () => call<void>("DELETE", `/keys/${k.id}`),
                      `Revoke key ${k.prefix}? It registers no more machines.`,
                      "Revoke",
                    ),
                },
              },
              "Revoke",
            )
          : null,
      ),
    );
  }
}
