// Compile-time only (never bundled): the modules implement every value their hand-written
// .d.ts contract declares, with the declared types.

import type * as IndexAPI from "../types/index.js";
import type * as TerminalAPI from "../types/terminal.js";
import type * as Index from "./index.js";
import type * as Terminal from "./terminal.js";

type Implements<Impl extends Contract, Contract> = Impl;

export type IndexImplementsContract = Implements<typeof Index, typeof IndexAPI>;
export type TerminalImplementsContract = Implements<typeof Terminal, typeof TerminalAPI>;
