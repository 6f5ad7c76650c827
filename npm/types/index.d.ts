/**
 * @tsconnect/connect — SSH from a browser tab into machines of a tsconnect overlay.
 *
 * Each IPN runs its own Go runtime (tsconnect.wasm) in a dedicated Web Worker; the page talks
 * to it by messages with transferable buffers. Keys stay in memory only.
 */

/** Options for {@link createIPN}. */
export interface IPNConfig {
  /** Base URL of the control server, e.g. `"https://login.example.com"`. */
  controlURL: string;
  /**
   * Pre-auth key that registers this browser node (normally ephemeral and single-use). Kept in
   * memory only. Without one the node logs in interactively: `run` reports a sign-in URL on the
   * control server through `notifyBrowseToURL` (state `"needs-login"`), and the node joins as
   * the user who signs in there.
   */
  authKey?: string;
  /** Name the node asks for; control makes it unique in the network. Default `"browser"`. */
  hostname?: string;
  /** Where tsconnect.wasm is loaded from. Default: next to this module, `new URL("./tsconnect.wasm", import.meta.url)`. */
  wasmURL?: string | URL;
  /**
   * Where tsconnect-files.wasm (the SFTP client, loaded on the first use of `session.files`) is
   * loaded from. Default: next to `wasmURL` if given, else next to this module.
   */
  filesWasmURL?: string | URL;
  /** Receives the node's log lines (never secrets or terminal data). Default: discarded. */
  logger?: (line: string) => void;
}

/** Where a node is in its life. */
export type IPNState = "starting" | "needs-login" | "running" | "stopped";

/**
 * Codes of {@link IPNError}. Control's codes pass through (`invalid_key`, `expired_key`, `used_key`,
 * `revoked_key`, `node_deleted`, `login_expired`, ...); the rest are the browser side's.
 * `unsupported_version`: control and this package share no protocol version; the message says which
 * to upgrade to what.
 */
export type IPNErrorCode =
  | "invalid_key"
  | "expired_key"
  | "used_key"
  | "revoked_key"
  | "node_deleted"
  | "login_expired"
  | "unsupported_version"
  | "bad_request"
  | "control_unreachable"
  | "relay_unreachable"
  | "host_unreachable"
  | "unknown_host"
  | "no_ssh"
  | "no_host_key"
  | "host_key_mismatch"
  | "ssh_failed"
  | "session_lost"
  | "session_killed"
  | "not_started"
  | "closed"
  | "timeout"
  | "wasm_load_failed"
  | "worker_failed"
  | "panic"
  | "internal"
  | "no_such_file"
  | "permission_denied"
  | "file_exists"
  | "is_directory"
  | "canceled"
  | "too_many_transfers"
  | "file_failed"
  | "connection_refused"
  | "too_many_streams"
  | "not_resumable"
  | (string & {});

/** An Error with a code a program can switch on. */
export interface IPNError extends Error {
  /** What failed, e.g. `"used_key"` or `"host_unreachable"`. */
  code: IPNErrorCode;
}

/** One machine of the network as this node sees it (the JSON form of the network map). */
export interface NetMapNode {
  /** Control's ID of the node. */
  id: number;
  /** Name, unique in the network (a DNS label). */
  name: string;
  /** WireGuard/DERP public key, in its text form. */
  key: string;
  /** Overlay addresses as prefixes: one IPv4 /32 and one IPv6 /128. */
  addresses: string[];
  /** Region ID of its home relay; absent if unknown. */
  homeDERP?: number;
  /** Owner's user ID; absent for a tagged node. */
  user?: number;
  /** ACL tags, e.g. `["tag:server"]`. */
  tags?: string[];
  /** Whether it runs tsconnect SSH on port 22 of its overlay addresses. */
  ssh?: boolean;
  /** Its SSH host keys in authorized_keys form; the SSH client pins them. */
  sshHostKeys?: string[];
  /** Whether it forwards port 5900 of its overlay addresses to a VNC server (`tsconnect up --vnc`); reach it with {@link IPN.dial}. */
  vnc?: boolean;
  /** Host name the machine reports. */
  hostname?: string;
  /** Operating system the machine reports. */
  os?: string;
  /** Whether the node is deleted when it disconnects. */
  ephemeral?: boolean;
  /** Whether the node is connected to control. */
  online?: boolean;
}

/** A user's public profile. */
export interface NetMapUser {
  /** Control's ID of the user. */
  id: number;
  /** Login name, an email address. */
  loginName: string;
  /** Display name, if set. */
  displayName?: string;
}

/** What control tells this node about the network. */
export interface NetMap {
  /** This node. */
  self: NetMapNode;
  /** Peers this node may reach. */
  peers: NetMapNode[];
  /** Profiles of the users owning self and peers. */
  users: NetMapUser[];
  /** The network's domain, e.g. `"demo.tsconnect"`. */
  domain?: string;
}

/** Notifications for {@link IPN.run}; each is optional. */
export interface IPNCallbacks {
  /** Called on every state change. */
  notifyState?(state: IPNState): void;
  /** Called with every new network map. */
  notifyNetMap?(netMap: NetMap): void;
  /**
   * Called when the user must open a URL to log in (interactive login: no `authKey`): a page on
   * the control server (`controlURL`'s origin, path `/login/…`) where they sign in and confirm
   * that this node joins as theirs; state is `"needs-login"` meanwhile and `login()` resolves
   * once they have. The URL is good for one login, for 10 minutes. This call is not a user
   * gesture, so a `window.open` here is usually blocked: show it as a link, or open it from the
   * user's next click.
   */
  notifyBrowseToURL?(url: string): void;
  /** Called when the Go runtime panicked or died; the IPN is unusable afterwards. */
  notifyPanicRecover?(message: string): void;
}

/** Options and callbacks of {@link IPN.ssh}. */
export interface SSHOptions {
  /**
   * Receives terminal output, byte-exact. Flow control: return a Promise that settles once the
   * bytes are consumed (xterm.js: `new Promise((done) => term.write(data, done))`) and the
   * session stops reading from the remote while about 1 MiB is unconsumed, so the remote
   * blocks instead of output piling up in the page; returning nothing consumes at once.
   */
  onData(data: Uint8Array): void | Promise<void>;
  /** Initial terminal height in rows. Default 24. */
  rows?: number;
  /** Initial terminal width in columns. Default 80. */
  cols?: number;
  /**
   * A command to run in the terminal instead of the login shell, as `ssh -t host command` does
   * (for example `tmux new -A -s main`); the policy applies as to any login. At most 4096 bytes
   * of UTF-8 without NUL; a longer one fails the session with `ssh_failed`.
   */
  command?: string;
  /**
   * Receives an authentication banner (check mode: "… re-authenticate as USER. Visit: URL").
   * The banner-URL rule: `url` is set only when the banner links to the control server's own
   * check page — an http(s) URL on `controlURL`'s origin (same scheme, host and port) whose path
   * is `/check/ID` under `controlURL`'s path, with no credentials, query or fragment — and is
   * then the first such link, normalized; otherwise it is undefined. A banner is written by the
   * machine you log in to, so every other link (another site, another page of control, a
   * `/login/` page) is only text: show `text`, but open nothing from it. Opening `url` for the
   * user (the console and the demo page do, in a window of its own) is safe.
   */
  onBanner?(text: string, url?: string): void;
  /** Receives human-readable connection steps ("Connecting to …"). */
  onConnectionProgress?(text: string): void;
  /** Called once the remote shell runs. */
  onConnected?(): void;
  /** Called exactly once at the end: with the exit code, or with -1 and why the session failed or ended without one. */
  onDone?(exitCode: number, error?: IPNError): void;
}

/** A running (or connecting) SSH session. Methods never throw and may be called before it is connected. */
export interface SSHSession {
  /** Sends keystrokes or bytes to the remote; strings are sent as UTF-8. Queued until connected. */
  write(data: Uint8Array | string): void;
  /** Tells the remote PTY its new size. */
  resize(rows: number, cols: number): void;
  /** Ends the session; `onDone` follows with code -1 and error code `"closed"`. */
  close(): void;
  /** Files on the remote machine, over SFTP on this session's own connection, as its user. */
  readonly files: SSHFiles;
}

/** A directory entry as the remote reports it. */
export interface FileEntry {
  name: string;
  /** Bytes. */
  size: number;
  /** POSIX `st_mode`, type bits included. */
  mode: number;
  /** Modification time, Unix seconds. */
  mtime: number;
  isDir: boolean;
}

/** A directory listing. */
export interface FileListing {
  /** The directory's absolute path as the remote resolved it. */
  path: string;
  entries: FileEntry[];
}

/** Options of {@link SSHFiles.download}. */
export interface DownloadOptions {
  /** Aborting cancels the download; the stream errors with code `"canceled"`. */
  signal?: AbortSignal;
  /** Called as bytes arrive: so far (from the file's start), and the file's size. */
  onProgress?(bytes: number, total: number): void;
  /**
   * Continue an interrupted download from byte `offset`, if the file still has the `size` and
   * `mtime` its first {@link Download} gave (else it fails with `"not_resumable"`).
   */
  resume?: { offset: number; size: number; mtime: number };
  /**
   * With `TerminalSession.files` (openTerminal with `reconnect`): the connection dropped
   * mid-way; the transfer waits for the reconnect and then continues where it got to.
   */
  onInterrupted?(error: IPNError): void;
  /** With `TerminalSession.files`: the transfer continues on the new connection. */
  onResumed?(): void;
}

/** A download under way. */
export interface Download {
  /** The file's size when it was opened. */
  size: number;
  /** The file's modification time when it was opened (Unix seconds). */
  mtime: number;
  /** The file's bytes, flow-controlled: nothing more arrives than the reader takes (1 MiB window). */
  stream: ReadableStream<Uint8Array>;
}

/** Options of {@link SSHFiles.upload}. */
export interface UploadOptions {
  /** Aborting cancels the upload: the remote file stays as it was. */
  signal?: AbortSignal;
  /** Replace an existing file; without it an existing file fails with `"file_exists"`. */
  overwrite?: boolean;
  /** Permission bits of a new file (before the remote umask). Default 0o644. */
  mode?: number;
  /** Called as bytes go out: so far, and the total when known (a Blob's size). */
  onProgress?(bytes: number, total?: number): void;
  /** Called with the hidden file the upload writes into, once it is open (for `resume`). */
  onOpen?(hidden: string): void;
  /**
   * Continue an interrupted upload of the same Blob in its hidden file (as `onOpen` gave it):
   * from a little before what the remote has (the last 512 KiB a dropped connection may have
   * left unwritten), once the 64 KiB before that point equal the Blob's (else `"not_resumable"`).
   */
  resume?: { hidden: string };
  /** As {@link DownloadOptions.onInterrupted}. */
  onInterrupted?(error: IPNError): void;
  /** As {@link DownloadOptions.onResumed}. */
  onResumed?(): void;
}

/**
 * File transfer on one SSH session (SFTP on the session's connection, as the logged-in user; the
 * policy's rules apply). At most 8 downloads and uploads at once (`"too_many_transfers"`); paths
 * are at most 4096 bytes. Errors are {@link IPNError}s: `"no_such_file"`, `"permission_denied"`,
 * `"file_exists"`, `"is_directory"`, `"canceled"`, `"too_many_transfers"`, `"bad_request"`,
 * `"file_failed"`, `"not_resumable"`, `"not_started"` (the session is not connected); a transfer whose
 * session ends fails with the session's error (`"session_lost"`, …, `"closed"`).
 */
export interface SSHFiles {
  /** Lists a directory; no path (or `"."`) is the user's home. */
  list(path?: string): Promise<FileListing>;
  /** Opens a file for download; resolves once it is open, with its size and a stream of its bytes. */
  download(path: string, options?: DownloadOptions): Promise<Download>;
  /**
   * Uploads a stream or Blob (a File) to `path`, streaming it (never whole in memory). It lands
   * in a hidden file next to `path` renamed to `path` once complete: a failed or canceled upload
   * leaves `path` as it was. Resolves when the file is complete on the remote.
   */
  upload(path: string, data: ReadableStream<Uint8Array> | Blob, options?: UploadOptions): Promise<void>;
}

/**
 * A TCP connection from this browser node to a peer ({@link IPN.dial}). Both directions are
 * flow-controlled as a terminal is: about 1 MiB of the peer's bytes waits for a reader that
 * does not read (then the peer's writes block), and a write resolves once it fits in the 1 MiB
 * the page may have on its way.
 */
export interface TCPStream {
  /** The peer's bytes. It closes when the peer ends the connection, and errors with an {@link IPNError} if it breaks. */
  readonly readable: ReadableStream<Uint8Array>;
  /** Bytes for the peer. Closing it half-closes the connection (the peer reads end of stream; its bytes still arrive). */
  readonly writable: WritableStream<Uint8Array>;
  /** Ends the connection both ways at once; the readable closes. Cancelling the readable or aborting the writable does the same. */
  close(): void;
}

/** A browser node of the network. */
export interface IPN {
  /** The latest state reported by the node. */
  readonly state: IPNState;
  /** Starts the node (register, network map, relay) and subscribes to its notifications. Only the first call starts it. */
  run(callbacks: IPNCallbacks): void;
  /**
   * Resolves once the node runs (after an interactive sign-in, if it had no auth key: it waits
   * for the user as long as the login URL is good); rejects with an {@link IPNError} saying why
   * it could not start (bad key, `login_expired` when nobody signed in in time, control or relay
   * unreachable). Call it after {@link IPN.run}.
   */
  login(): Promise<void>;
  /** Deletes the node at control (an ephemeral node is gone at once) and stops it; sessions end. */
  logout(): Promise<void>;
  /** Opens an SSH session to `user@host`; `host` is a peer name or overlay address. */
  ssh(host: string, user: string, options: SSHOptions): SSHSession;
  /**
   * Opens a TCP connection to `port` (1–65535) of `host` (a peer name or overlay address, at most
   * 253 bytes) through the overlay; resolves once it is connected. The peer's policy decides as
   * for any connection: a port it refuses (or where nothing listens) rejects at once with
   * `"connection_refused"`. Other rejections: `"bad_request"` (host or port out of range),
   * `"unknown_host"`, `"host_unreachable"` (no answer in 20 s), `"too_many_streams"` (32 are open),
   * `"closed"`.
   */
  dial(host: string, port: number): Promise<TCPStream>;
  /** Terminates the Worker at once without logging out (control removes an ephemeral node after its grace period). */
  dispose(): void;
}

/**
 * Loads tsconnect.wasm (compiled once per URL and page), starts a dedicated Worker running it
 * and creates the node in it. Rejects with an {@link IPNError}: `"wasm_load_failed"`,
 * `"worker_failed"` or `"bad_request"`. Retrying after a failure is fine.
 */
export function createIPN(config: IPNConfig): Promise<IPN>;

/** Tells whether `e` is an {@link IPNError}. */
export function isIPNError(e: unknown): e is IPNError;
