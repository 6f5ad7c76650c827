// @ts-check
// Shrinks a wasm that Go linked with binaryen's wasm-opt -Oz (the npm package binaryen), ~9% of
// the main wasm; results are cached by the input's hash, so an unchanged wasm costs nothing.
// `node scripts/wasmopt.mjs IN OUT [--names]` (--names keeps the name section, for CPU profiles).

import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));

/**
 * The wasm features Go's js/wasm port emits (binaryen validates the input against them) and the
 * size-first optimisation level. Every browser the package targets has these features.
 */
const flags = ["-Oz", "--enable-bulk-memory", "--enable-sign-ext", "--enable-nontrapping-float-to-int", "--enable-mutable-globals"];

/**
 * Writes the optimised form of the wasm at input to output, from the cache when the same input
 * was optimised before with the same binaryen and flags.
 * @param {string} input
 * @param {string} output
 * @param {{ names?: boolean }} [opts]
 */
export function optimizeWasm(input, output, opts = {}) {
  const bin = path.join(root, "node_modules/binaryen/bin/wasm-opt");
  if (!fs.existsSync(bin)) throw new Error(`${bin} missing: run \`npm ci\` (binaryen is a devDependency)`);
  const version = JSON.parse(fs.readFileSync(path.join(root, "node_modules/binaryen/package.json"), "utf8")).version;
  const args = opts.names ? [...flags, "-g"] : flags;
  const key = createHash("sha256")
    .update(fs.readFileSync(input))
    .update(`\0binaryen ${version}\0${args.join(" ")}`)
    .digest("hex");
  const cacheDir = path.join(root, "node_modules/.cache/tsconnect-wasm-opt");
  const cached = path.join(cacheDir, key + ".wasm");
  if (!fs.existsSync(cached)) {
    fs.mkdirSync(cacheDir, { recursive: true });
    const tmp = `${cached}.${process.pid}.tmp`;
    execFileSync(bin, [...args, input, "-o", tmp], { stdio: "inherit" });
    fs.renameSync(tmp, cached);
  }
  fs.copyFileSync(cached, output);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [input, output] = process.argv.slice(2).filter((a) => !a.startsWith("--"));
  if (!input || !output) {
    console.error("usage: node scripts/wasmopt.mjs IN OUT [--names]");
    process.exit(2);
  }
  optimizeWasm(input, output, { names: process.argv.includes("--names") });
}
