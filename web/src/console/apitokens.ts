// The "API tokens" part of the Keys page: tokens for scripts and CI (admins see all, members
// their own), create one with scopes (the secret is shown once), revoke.

import { call, type APIToken, type User } from "./api.js";
import { h, localTime, showSecretOnce } from "./dom.js";
import { ListPage } from "./listpage.js";

/** The scopes a token may have; policy and users only for admins' tokens. */
const scopes = ["read", "nodes", "keys", "policy", "users"];
const adminScopes = new Set(["policy", "users"]);

/** The API token list and the form making new ones. */
export class APITokensSection extends ListPage<APIToken> {
  readonly el: HTMLElement;
  #secret = h("div", { class: "secret", hidden: true, "aria-live": "polite" });

  constructor(private readonly me: User) {
    super();
    const boxes = scopes
      .filter((s) => me.role === "admin" || !adminScopes.has(s))
      .map((s) => h("input", { type: "checkbox", name: "scope", value: s, checked: s === "read" ? true : undefined }));
    const description = h("input", { type: "text", name: "token-description", size: 30 });
    const expiry = h(
      "select",
      { name: "token-expiry" },
      h("option", { value: "86400" }, "1 day"),
      h("option", { value: "2592000", selected: true }, "30 days"),
      h("option", { value: "7776000" }, "90 days"),
      h("option", { value: "31536000" }, "1 year"),
    );
    const create = async (ev: Event) => {
      ev.preventDefault();
      this.error.hidden = true;
      await this.act(async () => {
        const r = await call<{ token: APIToken; secret: string }>("POST", "/api-tokens", {
          scopes: boxes.filter((b) => b.checked).map((b) => b.value),
          expiresIn: Number(expiry.value),
          description: description.value,
        });
        showSecretOnce(this.#secret, "API token", r.secret);
      });
    };
    this.el = h(
      "section",
      { "aria-labelledby": "tokens-h" },
      h("h2", { id: "tokens-h" }, "API tokens"),
      h(
        "p",
        { class: "help" },
        "For scripts and CI: send it as Authorization: Bearer TOKEN to /api/v1/. A token does no more than its scopes and your role allow.",
      ),
      h(
        "form",
        { class: "new-token", on: { submit: (ev) => void create(ev) } },
        h("fieldset", null, h("legend", null, "Scopes"), ...boxes.map((b) => h("label", null, b, ` ${b.value}`))),
        h("label", null, "Expires after ", expiry),
        h("label", null, "Description ", description),
        h("div", { class: "buttons" }, h("button", { type: "submit", class: "primary" }, "Create token")),
      ),
      this.#secret,
      this.error,
      h(
        "table",
        { class: "tokens" },
        h(
          "thead",
          null,
          h(
            "tr",
            null,
            ...["Token", "Owner", "Scopes", "Expires", "Last used", "State"].map((t) => h("th", { scope: "col" }, t)),
            h("th", { scope: "col" }, h("span", { class: "sr-only" }, "Actions")),
          ),
        ),
        this.body,
      ),
    );
    void this.load();
  }

  protected async fetch(): Promise<APIToken[]> {
    return (await call<{ tokens: APIToken[] }>("GET", "/api-tokens")).tokens;
  }

  protected row(t: APIToken): HTMLTableRowElement {
    const state = t.revoked ? "revoked" : Date.parse(t.expires) < Date.now() ? "expired" : "valid";
    return h(
      "tr",
      { "data-token": t.id },
      h("td", null, `#${t.id}`, t.description ? h("div", { class: "help" }, t.description) : null),
      h("td", null, t.owner.email),
      h("td", null, t.scopes.join(", ")),
      h("td", null, localTime(t.expires)),
      h("td", null, t.lastUsed ? localTime(t.lastUsed) : "never"),
      h("td", null, state),
      h(
        "td",
        null,
        t.revoked
          ? null
          : h(
              "button",
              {
                type: "button",
                class: "danger",
                "aria-label": `Revoke API token ${t.id}`,
                on: {
                  click: () =>
                    void this.act(
                      () => call<void>("DELETE", `/api-tokens/${t.id}`),
                      `Revoke API token #${t.id}? Scripts using it stop working.`,
                      "Revoke",
                    ),
                },
              },
              "Revoke",
            ),
      ),
    );
  }
}
