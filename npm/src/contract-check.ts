// Compile-time only (never bundled): the modules implement every value their hand-written
// .d.ts contract declares, with the declared types, and export nothing the contract lacks.

import type * as IndexAPI from "../types/index.js";
import type * as TerminalAPI from "../types/terminal.js";
import type * as Index from "./index.js";
import type { FromWorker, GoIPN } from "./protocol.js";
import type * as Terminal from "./terminal.js";

type Implements<Impl extends Contract, Contract> = Impl;
/** Resolves to true only when A and B are the same set (of export names). */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type True<T extends true> = T;

export type IndexImplementsContract = Implements<typeof Index, typeof IndexAPI>;
export type TerminalImplementsContract = Implements<typeof Terminal, typeof TerminalAPI>;
export type IndexExportsOnlyContract = True<Same<keyof typeof Index, keyof typeof IndexAPI>>;
export type TerminalExportsOnlyContract = True<Same<keyof typeof Terminal, keyof typeof TerminalAPI>>;

// The states the Worker reports are the contract's.
export type WorkerStatesAreContract = True<Same<Extract<FromWorker, { t: "state" }>["state"], IndexAPI.IPNState>>;
// Every callback the contract's IPNCallbacks names has a notification from the Go side.
export type GoNotifiesContract = Implements<keyof IndexAPI.IPNCallbacks, keyof Parameters<GoIPN["run"]>[0]>;
// openTerminal's options are exactly one of container or childWindow.
export type TerminalTakesBoth = Implements<
  { container: HTMLElement } | { childWindow: Window },
  Parameters<typeof Terminal.openTerminal>[2]
>;
