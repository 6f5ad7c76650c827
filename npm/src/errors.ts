import type { IPNError, IPNErrorCode } from "../types/index.js";
import type { WireError } from "./protocol.js";

/** Makes an IPNError. */
export function ipnError(code: IPNErrorCode, message: string): IPNError {
  const e = new Error(message) as IPNError;
  e.name = "IPNError";
  e.code = code;
  return e;
}

/** Rebuilds an IPNError from its wire form. */
export function fromWire(w: WireError): IPNError {
  return ipnError(w.code, w.message);
}

export function isIPNError(e: unknown): e is IPNError {
  return e instanceof Error && typeof (e as { code?: unknown }).code === "string";
}
