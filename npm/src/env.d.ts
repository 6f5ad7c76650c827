// Build-time constants and the Go runtime's loader (wasm_exec.js, copied from the Go
// toolchain by esbuild.config.js).

/** Source of the bundled Worker (worker.ts with wasm_exec.js), injected by esbuild.config.js. */
declare const __TSCONNECT_WORKER__: string;

/** The class wasm_exec.js defines on globalThis. */
declare class Go {
  importObject: WebAssembly.Imports;
  run(instance: WebAssembly.Instance): Promise<void>;
  exited: boolean;
}
