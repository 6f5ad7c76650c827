// Password dialogs: change your own (current password required) or, for admins, reset
// another user's. Either ends that user's other console sessions (the server says so).

import { call, message, setCSRF, type User } from "./api.js";
import { h, modal } from "./dom.js";

/**
 * passwordDialog asks for a new password (and the current one when withCurrent) and runs
 * submit with them; an error stays in the dialog. Resolves true once submit succeeded.
 */
function passwordDialog(
  label: string,
  note: string,
  withCurrent: boolean,
  submit: (current: string, next: string) => Promise<void>,
): Promise<boolean> {
  return modal<boolean>(
    label,
    (close) => {
      const current = h("input", { type: "password", name: "current", required: true, autocomplete: "current-password" });
      const next = h("input", { type: "password", name: "new", required: true, minlength: 8, autocomplete: "new-password" });
      const error = h("p", { class: "error", role: "alert", hidden: true });
      const send = async (ev: Event) => {
        ev.preventDefault();
        error.hidden = true;
        try {
          await submit(current.value, next.value);
          close(true);
        } catch (e) {
          error.hidden = false;
          error.textContent = message(e);
        }
      };
      return [
        h(
          "form",
          { class: "password", on: { submit: (ev) => void send(ev) } },
          h("h2", null, label),
          h("p", { class: "help" }, note),
          withCurrent ? h("label", null, "Current password ", current) : null,
          h("label", null, "New password ", next),
          error,
          h(
            "div",
            { class: "buttons" },
            h("button", { type: "button", on: { click: () => close(false) } }, "Cancel"),
            h("button", { type: "submit", class: "primary" }, "Set password"),
          ),
        ),
      ];
    },
    false,
  );
}

/** changeOwnPassword lets the signed-in user change their password; this session goes on. */
export function changeOwnPassword(): Promise<boolean> {
  return passwordDialog("Change your password", "Your other console sessions end.", true, async (current, next) => {
    const r = await call<{ csrfToken: string }>("PUT", "/me/password", { currentPassword: current, newPassword: next });
    setCSRF(r.csrfToken);
  });
}

/** resetPassword lets an admin set another user's password. */
export function resetPassword(u: User): Promise<boolean> {
  return passwordDialog(`Reset the password of ${u.email}`, "Their console sessions end.", false, async (_, next) => {
    await call<void>("PUT", `/users/${u.id}/password`, { password: next });
  });
}
