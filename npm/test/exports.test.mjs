// Checks the built package as a consumer sees it: the exports map resolves, the modules
// load, and the wasm the code finds via import.meta.url is the one the exports map names.
// Run after `npm run build`: node --test npm/test/

import assert from "node:assert/strict";
import { readFileSync, existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { test } from "node:test";

// Self-reference: this file lives inside the package, so its name resolves through "exports".
const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));

test("package.json declares an ESM package with types and a .wasm subpath", () => {
  assert.equal(pkg.type, "module");
  assert.equal(pkg.exports["."].types, "./dist/index.d.ts");
  assert.equal(pkg.exports["./terminal"].types, "./dist/terminal.d.ts");
  assert.equal(pkg.exports["./tsconnect.wasm"], "./dist/tsconnect.wasm");
  for (const dep of [
    "@xterm/xterm",
    "@xterm/addon-fit",
    "@xterm/addon-unicode11",
    "@xterm/addon-web-links",
    "@xterm/addon-search",
    "@xterm/addon-webgl",
  ]) {
    assert.ok(pkg.peerDependencies[dep], `${dep} is a peer dependency`);
    assert.equal(pkg.peerDependenciesMeta[dep]?.optional, true, `${dep} is optional (the main entry needs none)`);
  }
});

test("the exports map resolves every entry to a built file", () => {
  for (const sub of ["", "/terminal", "/tsconnect.wasm", "/package.json"]) {
    const url = import.meta.resolve(`${pkg.name}${sub}`);
    assert.ok(existsSync(fileURLToPath(url)), `${pkg.name}${sub} → ${url} does not exist`);
  }
  for (const t of [pkg.exports["."].types, pkg.exports["./terminal"].types]) {
    assert.ok(existsSync(fileURLToPath(new URL(`../${t}`, import.meta.url))), `${t} missing`);
  }
});

test("the module's default wasm URL is the exports map's .wasm", async () => {
  const main = import.meta.resolve(pkg.name);
  const wasm = import.meta.resolve(`${pkg.name}/tsconnect.wasm`);
  assert.equal(new URL("./tsconnect.wasm", main).href, wasm);
  assert.match(readFileSync(fileURLToPath(main), "utf8"), /new URL\("\.\/tsconnect\.wasm", import\.meta\.url\)/);
  const bytes = readFileSync(fileURLToPath(wasm));
  assert.deepEqual([...bytes.subarray(0, 4)], [0, 0x61, 0x73, 0x6d], "not a WebAssembly module");
  // The module's imports are exactly what wasm_exec.js provides (namespace "gojs").
  const mod = await WebAssembly.compile(bytes);
  assert.ok(
    WebAssembly.Module.imports(mod).every((i) => i.module === "gojs"),
    "unexpected wasm import namespace",
  );
});

test("the main entry loads and exports the contract's values", async () => {
  const m = await import(pkg.name);
  assert.deepEqual(Object.keys(m).sort(), ["createIPN", "isIPNError"]);
  assert.equal(typeof m.createIPN, "function");
  await assert.rejects(m.createIPN({ controlURL: "", authKey: "k" }), (/** @type {{ code?: string }} */ e) => e.code === "bad_request");
  await assert.rejects(
    m.createIPN({ controlURL: "http://127.0.0.1:1", authKey: 42 }),
    (/** @type {{ code?: string }} */ e) => e.code === "bad_request",
  );
  // No authKey is an interactive login, not a bad request: createIPN goes on to load the wasm.
  await assert.rejects(
    m.createIPN({ controlURL: "http://127.0.0.1:1", wasmURL: "http://127.0.0.1:1/tsconnect.wasm" }),
    (/** @type {{ code?: string }} */ e) => e.code === "wasm_load_failed",
  );
  assert.equal(m.isIPNError(Object.assign(new Error("x"), { code: "used_key" })), true);
  assert.equal(m.isIPNError(new Error("x")), false);
});

test("the terminal entry keeps xterm external (a peer dependency)", () => {
  const src = readFileSync(fileURLToPath(import.meta.resolve(`${pkg.name}/terminal`)), "utf8");
  assert.match(src, /from "@xterm\/xterm"/);
  assert.match(src, /from "@xterm\/addon-fit"/);
  assert.match(src, /from "@xterm\/addon-unicode11"/);
  assert.match(src, /from "@xterm\/addon-web-links"/);
  assert.match(src, /from "@xterm\/addon-search"/);
  assert.match(src, /import\("@xterm\/addon-webgl"\)/);
  // The package's own code (terminal, key bar, find bar, themes) is ~22 KB unminified; xterm.js is ~345 KB.
  assert.ok(src.length < 40_000, `terminal.js (${src.length} bytes) seems to bundle xterm`);
});
