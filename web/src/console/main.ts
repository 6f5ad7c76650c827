// The admin console at /admin/: login, then Machines, Sessions (live SSH logins), Recordings, Audit,
// Access controls, Keys and Users (Audit, Access controls, Users and tag/expire/delete for admins only),
// the open SSH sessions of this page, and session links (#/ssh/USER@HOST).
// No framework: plain DOM built with dom.ts (text nodes only, never HTML from data).

import "@xterm/xterm/css/xterm.css";
import "./console.css";
import "./font.css";
import { ApiError, call, message, setCSRF, whenUnauthenticated, type User } from "./api.js";
import { AuditPage } from "./audit.js";
import { h, replace } from "./dom.js";
import { KeysPage } from "./keys.js";
import { LiveSessionsPage } from "./livesessions.js";
import { MachinesPage } from "./machines.js";
import { changeOwnPassword } from "./password.js";
import { PolicyPage } from "./policy.js";
import { RecordingsPage } from "./recordings.js";
import { Sessions } from "./sessions.js";
import { loadSettings, saveSettings, settingsDialog } from "./termsettings.js";
import { LinkPage, linkHash, pendingLinkHash, resumeLink, returnHash } from "./sshlink.js";
import { UsersPage } from "./users.js";

const app = document.getElementById("app") as HTMLElement;

interface Route {
  hash: string;
  title: string;
  admin: boolean;
  /** Shown only to those who may watch recordings (GET /me's recordingViewer). */
  viewer?: boolean;
  /** Builds the page; params is the hash's query (#/recordings?id=ID). */
  make(me: User, params: URLSearchParams): { el: HTMLElement; stop?(): void };
}

const sessions = new Sessions();
addEventListener("pagehide", () => sessions.closeAll());

let machines: MachinesPage | undefined;
/** The Recordings page while it shows: its node stops when the page goes. */
let recordings: RecordingsPage | undefined;
const routes: Route[] = [
  {
    hash: "#/machines",
    title: "Machines",
    admin: false,
    make: (me) => (machines ??= new MachinesPage(me, sessions)),
  },
  { hash: "#/sessions", title: "Sessions", admin: false, make: (me) => new LiveSessionsPage(me) },
  {
    hash: "#/recordings",
    title: "Recordings",
    admin: false,
    viewer: true,
    make: (_, q) => (recordings = new RecordingsPage(q.get("id") ?? undefined)),
  },
  { hash: "#/audit", title: "Audit", admin: true, make: () => new AuditPage() },
  { hash: "#/acl", title: "Access controls", admin: true, make: () => new PolicyPage() },
  { hash: "#/keys", title: "Keys", admin: false, make: (me) => new KeysPage(me) },
  { hash: "#/users", title: "Users", admin: true, make: (me) => new UsersPage(me) },
];

let current: User | undefined;
/** The page of the session link the tab shows (kept while its hash stays, so its terminal does). */
let linkPage: LinkPage | undefined;

async function start() {
  whenUnauthenticated(() => showLogin("Your session ended; log in again."));
  try {
    const r = await call<SignedIn>("GET", "/me");
    signedIn(r);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) showLogin();
    else showLogin(message(e));
  }
}

function showLogin(notice?: string) {
  current = undefined;
  machines?.stop();
  machines = undefined;
  recordings?.stop();
  recordings = undefined;
  linkPage = undefined;
  sessions.closeAll();
  document.body.dataset.view = "login";
  const email = h("input", { type: "email", name: "email", id: "login-email", required: true, autocomplete: "username", autofocus: true });
  const password = h("input", {
    type: "password",
    name: "password",
    id: "login-password",
    required: true,
    autocomplete: "current-password",
  });
  const error = h("p", { class: "error", role: "alert", hidden: !notice }, notice ?? "");
  const submit = h("button", { type: "submit", class: "primary" }, "Log in");
  const sso = h("div", { class: "sso", hidden: true });
  const form = h(
    "form",
    {
      class: "login",
      "aria-labelledby": "login-h",
      on: {
        submit: async (ev) => {
          ev.preventDefault();
          submit.disabled = true;
          error.hidden = true;
          try {
            const r = await call<SignedIn>("POST", "/login", { email: email.value, password: password.value });
            signedIn(r);
          } catch (e) {
            error.hidden = false;
            error.textContent = e instanceof ApiError && e.code === "bad_login" ? "Wrong email or password." : message(e);
            password.select();
          } finally {
            submit.disabled = false;
          }
        },
      },
    },
    h("h1", { id: "login-h" }, "tsconnect console"),
    location.hash.startsWith(linkHash) || location.hash === pendingLinkHash
      ? h("p", { class: "link-note", role: "note" }, "Sign in to open the SSH session of this link.")
      : null,
    h("label", { for: "login-email" }, "Email"),
    email,
    h("label", { for: "login-password" }, "Password"),
    password,
    error,
    submit,
    sso,
  );
  replace(app, h("main", { class: "login-page" }, form));
  email.focus();
  void offerSSO(sso);
}

/** What GET /auth-methods answers: the ways to sign in to this server. */
interface AuthMethods {
  password: boolean;
  oidc: { issuer: string; startURL: string } | null;
}

/** offerSSO fills the login form's single sign-on part when the server has an identity provider. */
async function offerSSO(box: HTMLElement) {
  let m: AuthMethods;
  try {
    m = await call<AuthMethods>("GET", "/auth-methods");
  } catch {
    return; // password sign-in still works; its errors show there
  }
  const oidc = m.oidc;
  if (!oidc || !box.isConnected) return;
  let host = oidc.issuer;
  try {
    host = new URL(oidc.issuer).host;
  } catch {
    // shown as given
  }
  // Back to the page asked for (the hash route) once signed in; a plain navigation, so the
  // provider's redirect comes back to a same-site page that sets the session cookie.
  const start = new URL(oidc.startURL, location.href);
  if (start.origin !== location.origin) return;
  start.searchParams.set("returnTo", "/admin/" + returnHash());
  replace(
    box,
    h("button", { type: "button", class: "sso-button", on: { click: () => location.assign(start.href) } }, "Sign in with SSO"),
    h("span", { class: "help" }, "at ", host),
  );
  box.hidden = false;
}

/** What GET /me and POST /login answer. */
interface SignedIn {
  user: User;
  csrfToken: string;
  recordingViewer?: boolean;
}

function signedIn({ user: me, csrfToken: csrf, recordingViewer = false }: SignedIn) {
  current = me;
  setCSRF(csrf);
  document.body.dataset.view = "console";
  document.body.dataset.role = me.role;
  const nav = h(
    "nav",
    { "aria-label": "Pages" },
    h(
      "ul",
      null,
      routes
        .filter((r) => (!r.admin || me.role === "admin") && (!r.viewer || recordingViewer))
        .map((r) => h("li", null, h("a", { href: r.hash, "data-route": r.hash }, r.title))),
    ),
  );
  const logout = h(
    "button",
    {
      type: "button",
      on: {
        click: async () => {
          try {
            await call<void>("POST", "/logout");
          } catch {
            // The session is forgotten here either way.
          }
          setCSRF("");
          showLogin("Logged out.");
        },
      },
    },
    "Log out",
  );
  const password = h("button", { type: "button", on: { click: () => void changeOwnPassword() } }, "Password…");
  sessions.apply(loadSettings(me.id));
  sessions.onSave = (s) => saveSettings(me.id, s);
  const termButton = h(
    "button",
    {
      type: "button",
      on: {
        click: async () => {
          const s = await settingsDialog(sessions.settings);
          if (!s) return;
          saveSettings(me.id, s);
          sessions.apply(s);
        },
      },
    },
    "Terminal…",
  );
  const main = h("main", { id: "page", tabindex: -1 });
  replace(
    app,
    h(
      "header",
      { class: "top" },
      h("strong", { class: "brand" }, "tsconnect"),
      nav,
      h("span", { class: "me" }, h("span", { class: "who" }, me.email), " ", h("span", { class: "badge" }, me.role)),
      termButton,
      password,
      logout,
    ),
    sessions.el,
    main,
  );
  route();
}

function route() {
  if (!current) return;
  const me = current;
  const main = document.getElementById("page");
  if (!main) return;
  recordings?.stop();
  recordings = undefined;
  if (location.hash === pendingLinkHash && !resumeLink()) location.hash = "#/machines";
  if (location.hash.startsWith(linkHash)) {
    if (linkPage?.hash !== location.hash) linkPage = new LinkPage(location.hash, sessions);
    replace(main, linkPage.el);
    for (const a of document.querySelectorAll<HTMLAnchorElement>("nav a")) a.removeAttribute("aria-current");
    document.body.dataset.page = "ssh";
    return;
  }
  const q = location.hash.indexOf("?");
  const path = q < 0 ? location.hash : location.hash.slice(0, q);
  const params = new URLSearchParams(q < 0 ? "" : location.hash.slice(q + 1));
  const r = routes.find((x) => x.hash === path) ?? routes[0]!;
  if (r.admin && me.role !== "admin") {
    replace(main, h("h1", null, r.title), h("p", { class: "error", role: "alert" }, `${r.title} is for admins; you are a member.`));
  } else {
    replace(main, r.make(me, params).el);
  }
  for (const a of document.querySelectorAll<HTMLAnchorElement>("nav a")) {
    if (a.dataset.route === r.hash) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  document.body.dataset.page = r.hash.slice(2);
}

addEventListener("hashchange", () => {
  route();
  document.getElementById("page")?.focus();
});

void start();
