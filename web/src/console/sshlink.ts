// A link to a session: /ssh/USER@HOST[?cmd=COMMAND] (control redirects it to
// /admin/#/ssh/USER@HOST[?cmd=…]) opens that session in this tab once signed in, through the
// same launch as the "SSH…" dialog (policy checks, a single-use key). A command in the link is
// shown and runs only after a click on Run, so a mailed link never runs anything by itself.

import { call, message, type NetworkNode, type SSHUser } from "./api.js";
import { h, replace } from "./dom.js";
import { ownerText, type Sessions } from "./sessions.js";

/** The hash route of a session link. */
export const linkHash = "#/ssh/";

/** Where a session link waits while a single sign-on runs, when it is too long for the sign-in's return path. */
const pendingKey = "tsconnect.sshLink";
/** The hash that says the link is in sessionStorage (see pendingKey). */
export const pendingLinkHash = "#/ssh-link";
/** Longest return path the identity provider round trip keeps (oidc's maxReturnTo, less /admin/). */
const maxReturnHash = 1000;

/** What a session link asks for. */
export interface SSHLink {
  user: string;
  host: string;
  command?: string;
}

/** parseLink reads a session link from a hash (`#/ssh/USER@HOST?cmd=…`), or says why it cannot. */
export function parseLink(hash: string): SSHLink | string {
  const rest = hash.slice(linkHash.length);
  const q = rest.indexOf("?");
  let target: string;
  try {
    target = decodeURIComponent(q < 0 ? rest : rest.slice(0, q));
  } catch {
    return "The link is not valid URL encoding.";
  }
  const at = target.indexOf("@");
  const user = target.slice(0, at);
  const host = target.slice(at + 1);
  if (at <= 0 || !host) return `“${target}” is not USER@HOST.`;
  const command = q < 0 ? null : new URLSearchParams(rest.slice(q + 1)).get("cmd");
  return command ? { user, host, command } : { user, host };
}

/** linkURL is the link that opens user@host (on this console's origin). */
export function linkURL(user: string, host: string, command?: string): string {
  const u = new URL(`/ssh/${encodeURIComponent(user)}@${encodeURIComponent(host)}`, location.origin);
  if (command) u.searchParams.set("cmd", command);
  return u.href;
}

/**
 * returnHash is the hash a single sign-on should come back to: this one, or when a session
 * link is too long for the sign-in to carry, pendingLinkHash with the link kept in this tab.
 */
export function returnHash(): string {
  const hash = location.hash.startsWith("#/") ? location.hash : "";
  if (!hash.startsWith(linkHash) || hash.length <= maxReturnHash) return hash;
  sessionStorage.setItem(pendingKey, hash);
  return pendingLinkHash;
}

/** resumeLink turns pendingLinkHash back into the link it kept (once); false when there is none. */
export function resumeLink(): boolean {
  const hash = sessionStorage.getItem(pendingKey);
  sessionStorage.removeItem(pendingKey);
  if (!hash?.startsWith(linkHash)) return false;
  history.replaceState(null, "", hash);
  return true;
}

/** The page of one session link. */
export class LinkPage {
  readonly el: HTMLElement;
  #status = h("p", { class: "link-status", role: "status" }, "Looking up the machine…");
  #error = h("p", { class: "error", role: "alert", hidden: true });
  #body = h("div", { class: "link-body" });
  #term = h("div", { class: "link-term" });

  constructor(
    readonly hash: string,
    private readonly sessions: Sessions,
  ) {
    const link = parseLink(hash);
    const title = typeof link === "string" ? "Session link" : `SSH to ${link.user}@${link.host}`;
    this.el = h(
      "section",
      { class: "ssh-link", "aria-labelledby": "link-h" },
      h("h1", { id: "link-h" }, title),
      this.#status,
      this.#error,
      this.#body,
      this.#term,
      h("p", null, h("a", { href: "#/machines" }, "All machines")),
    );
    if (typeof link === "string") this.#fail(link);
    else void this.#open(link);
  }

  #fail(text: string) {
    this.#status.hidden = true;
    this.#error.hidden = false;
    this.#error.textContent = text;
  }

  async #open(link: SSHLink) {
    let m: NetworkNode;
    try {
      const found = await findMachine(link.host);
      if (!found) {
        this.#fail(`There is no machine “${link.host}” that you can see in this network.`);
        return;
      }
      m = found;
      const r = await call<{ users: SSHUser[]; reason?: string }>("GET", `/nodes/${m.id}/ssh-users`);
      if (!r.users.some((u) => u.name === link.user)) {
        const may = r.users.length
          ? ` You may log in to it as ${r.users.map((u) => u.name).join(", ")}.`
          : ` ${r.reason || `The policy lets you log in to ${m.name} as no one.`}`;
        this.#fail(`The policy does not let you log in to ${m.name} as ${link.user}.${may}`);
        return;
      }
    } catch (e) {
      this.#fail(message(e));
      return;
    }
    const owner = h("p", { class: "owner-line" }, m.tags.length ? "Tagged " : "Owned by ", ownerText(m), " · ", m.addresses[0] ?? "");
    const command = link.command;
    if (!command) {
      replace(this.#body, owner);
      this.#start(m, link.user);
      return;
    }
    this.#status.textContent = "This link runs a command. Nothing runs until you click Run.";
    const run = h(
      "button",
      {
        type: "button",
        class: "primary",
        on: {
          click: () => {
            run.disabled = true;
            this.#start(m, link.user, command);
          },
        },
      },
      "Run",
    );
    replace(
      this.#body,
      owner,
      h("p", null, `It runs on ${m.name} as ${link.user}, instead of the login shell:`),
      h("pre", { class: "link-cmd", "aria-label": "command" }, command),
      h("p", { class: "help" }, "Run it only if you expected this link and know what the command does."),
      h("div", { class: "buttons" }, h("a", { href: "#/machines", class: "button" }, "Cancel"), run),
    );
    run.focus();
  }

  #start(m: NetworkNode, user: string, command?: string) {
    this.#status.textContent = command ? "Running the command…" : "Opening the session…";
    this.sessions.openHere(m, user, this.#term, command);
  }
}

/** findMachine is the machine named host (or with host as an overlay address) that the user can see. */
async function findMachine(host: string): Promise<NetworkNode | undefined> {
  const want = host.toLowerCase();
  let after = 0;
  for (let pages = 0; pages < 20; pages++) {
    const q = new URLSearchParams({ q: host, limit: "1000" });
    if (after) q.set("after", String(after));
    const r = await call<{ nodes: NetworkNode[]; next?: number }>("GET", `/nodes?${q}`);
    const m = r.nodes.find((n) => n.name.toLowerCase() === want || n.addresses.some((a) => a.split("/")[0] === host));
    if (m || !r.next) return m;
    after = r.next;
  }
  return undefined;
}
