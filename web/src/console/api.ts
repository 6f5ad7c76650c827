// The console's client of the admin API (/api/v1, see docs/api.md): the sign-in cookie plus
// the X-CSRF-Token header on every state change; errors become ApiError with the server's code.

/** A user of the console. */
export interface User {
  id: number;
  email: string;
  displayName?: string;
  role: "admin" | "member";
}

/** A node (a machine of the network) as the API lists it. */
export interface NetworkNode {
  id: number;
  name: string;
  addresses: string[];
  os: string;
  owner: { id: number; email: string } | null;
  tags: string[];
  ssh: boolean;
  /** Terminal multiplexers its SSH users can attach to ("tmux", "screen"). */
  sshTools: string[];
  /** It forwards overlay port 5900 to a VNC server (tsconnect up --vnc). */
  vnc: boolean;
  /** The policy lets the signed-in user's browser node reach that port: "VNC…" is offered. */
  vncAllowed: boolean;
  online: boolean;
  lastSeen: string | null;
  ephemeral: boolean;
  expired: boolean;
  /** When its node key expires unless it re-authenticates; null: never. */
  keyExpiry: string | null;
  /** Its key passed keyExpiry: it is in no map until it re-authenticates (tsconnect login). */
  keyExpired: boolean;
  /** An admin made its key never expire. */
  keyExpiryDisabled: boolean;
}

/** A local account the policy lets the logged-in user log in as. */
export interface SSHUser {
  name: string;
  action: "accept" | "check";
}

/** What POST /nodes/{id}/ssh-launch answers: an SSH launch. */
export interface SSHLaunch {
  authKey: string;
  controlURL: string;
  host: string;
  user: string;
  expires: string;
}

/** What POST /nodes/{id}/vnc-launch answers: a VNC launch. */
export interface VNCLaunch {
  authKey: string;
  controlURL: string;
  host: string;
  expires: string;
}

/** One problem of a policy text. */
export interface PolicyProblem {
  line: number;
  column: number;
  field: string;
  message: string;
}

/** The policy in force. */
export interface PolicyDoc {
  text: string;
  version: number;
  author: string;
  time: string | null;
  note?: string;
}

/** A pre-auth key (never its secret). */
export interface AuthKey {
  id: number;
  prefix: string;
  owner: { id: number; email: string } | null;
  reusable: boolean;
  ephemeral: boolean;
  tags: string[];
  created: string;
  expires: string;
  used: boolean;
  revoked: boolean;
  description?: string;
}

/** An API token (never its secret). */
export interface APIToken {
  id: number;
  owner: { id: number; email: string };
  scopes: string[];
  description: string;
  created: string;
  expires: string;
  lastUsed: string | null;
  revoked: boolean;
}

/** An error answer of the API. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string,
    readonly body: Record<string, unknown>,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

let csrfToken = "";
let onUnauthenticated: () => void = () => {};

/** setCSRF remembers the sign-in's CSRF token (from login or /me). */
export function setCSRF(token: string): void {
  csrfToken = token;
}

/** whenUnauthenticated sets what happens when a call answers 401 (the sign-in ended). */
export function whenUnauthenticated(fn: () => void): void {
  onUnauthenticated = fn;
}

/** call makes one API request (extra: more headers, e.g. If-Match); it resolves with the JSON body (undefined for 204). */
export async function call<T>(method: string, path: string, body?: unknown, extra?: Record<string, string>): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json", ...extra };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && method !== "HEAD" && csrfToken) headers["X-CSRF-Token"] = csrfToken;
  let resp: Response;
  try {
    resp = await fetch(`/api/v1${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch (e) {
    throw new ApiError(`cannot reach the control server (${e instanceof Error ? e.message : String(e)})`, 0, "unreachable", {});
  }
  if (resp.status === 204) return undefined as T;
  let json: Record<string, unknown> = {};
  try {
    json = (await resp.json()) as Record<string, unknown>;
  } catch {
    if (resp.ok) throw new ApiError(`${method} ${path}: the answer is not JSON`, resp.status, "bad_answer", {});
  }
  if (!resp.ok) {
    const code = typeof json.code === "string" ? json.code : `http_${resp.status}`;
    const msg = typeof json.error === "string" ? json.error : `${method} ${path}: HTTP ${resp.status}`;
    const err = new ApiError(msg, resp.status, code, json);
    if (resp.status === 401 && path !== "/login" && path !== "/me") onUnauthenticated();
    if (resp.status === 429) {
      const after = resp.headers.get("Retry-After");
      if (after) err.message += ` (try again in ${after} s)`;
    }
    throw err;
  }
  return json as T;
}

/** message turns any thrown value into a sentence for the page. */
export function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
