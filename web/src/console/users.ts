// The Users page (admins): list, create with a role and a password, reset a password, delete.

import { call, type User } from "./api.js";
import { h } from "./dom.js";
import { ListPage } from "./listpage.js";
import { resetPassword } from "./password.js";

/** The users list and the form adding one. */
export class UsersPage extends ListPage<User> {
  readonly el: HTMLElement;
  #done = h("p", { role: "status" });

  constructor(private readonly me: User) {
    super();
    const email = h("input", { type: "email", name: "email", required: true, autocomplete: "off", size: 30 });
    const role = h("select", { name: "role" }, h("option", { value: "member" }, "Member"), h("option", { value: "admin" }, "Admin"));
    const password = h("input", { type: "password", name: "password", required: true, minlength: 8, autocomplete: "new-password" });
    const create = async (ev: Event) => {
      ev.preventDefault();
      this.error.hidden = true;
      await this.act(async () => {
        const u = await call<User>("POST", "/users", { email: email.value, role: role.value, password: password.value });
        this.#done.textContent = `Added ${u.email} (${u.role}).`;
        email.value = "";
        password.value = "";
      });
    };
    this.el = h(
      "section",
      { "aria-labelledby": "users-h" },
      h("h1", { id: "users-h" }, "Users"),
      h(
        "form",
        { class: "new-user", on: { submit: (ev) => void create(ev) } },
        h("h2", null, "Add a user"),
        h("label", null, "Email ", email),
        h("label", null, "Role ", role),
        h("label", null, "Password ", password),
        h("div", { class: "buttons" }, h("button", { type: "submit", class: "primary" }, "Add user")),
      ),
      this.#done,
      this.error,
      h(
        "table",
        { class: "users" },
        h(
          "thead",
          null,
          h(
            "tr",
            null,
            h("th", { scope: "col" }, "Email"),
            h("th", { scope: "col" }, "Name"),
            h("th", { scope: "col" }, "Role"),
            h("th", { scope: "col" }, h("span", { class: "sr-only" }, "Actions")),
          ),
        ),
        this.body,
      ),
    );
    void this.load();
  }

  protected async fetch(): Promise<User[]> {
    return (await call<{ users: User[] }>("GET", "/users")).users;
  }

  protected row(u: User): HTMLTableRowElement {
    return h(
      "tr",
      { "data-user": u.email },
      h("td", null, u.email),
      h("td", null, u.displayName ?? ""),
      h("td", null, u.role),
      h(
        "td",
        null,
        u.id === this.me.id
          ? h("span", { class: "help" }, "you")
          : [
              h(
                "button",
                {
                  type: "button",
                  "aria-label": `Reset the password of ${u.email}`,
                  on: {
                    click: () =>
                      void resetPassword(u).then((ok) => {
                        if (ok) this.#done.textContent = `Password of ${u.email} set; they are signed out of the console everywhere.`;
                      }),
                  },
                },
                "Reset password",
              ),
              " ",
              h(
                "button",
                {
                  type: "button",
                  class: "danger",
                  "aria-label": `Delete user ${u.email}`,
                  on: {
                    click: () =>
                      void this.act(
                        () => call<unknown>("DELETE", `/users/${u.id}`),
                        `Delete ${u.email}? Their sessions end and their machines lose their owner.`,
                        "Delete",
                      ),
                  },
                },
                "Delete",
              ),
            ],
      ),
    );
  }
}
