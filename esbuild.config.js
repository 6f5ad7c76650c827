// @ts-check
// The front-end build. `node esbuild.config.js wasm` builds tsconnect.wasm with Go, shrinks it
// with wasm-opt (scripts/wasmopt.mjs) and copies wasm_exec.js from the same toolchain; `node esbuild.config.js bundle [--dev]` bundles the
// npm package into npm/dist and the demo page into web/dist (hashed names, precompressed)
// and writes the size report npm/dist/size-report.json. The admin console (web/src/console)
// goes to web/dist/admin (index.html, term.html), its bundles to web/dist/assets.
// `npm run build` runs both with a type check in between.

import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import * as zlib from "node:zlib";
import * as esbuild from "esbuild";
import { optimizeWasm } from "./scripts/wasmopt.mjs";

const root = path.dirname(fileURLToPath(import.meta.url));
const r = (/** @type {string} */ p) => path.join(root, p);
const dev = process.argv.includes("--dev");

/** Budgets from docs/architecture.md. */
const budget = { raw: 14_000_000, brotli: 2_800_000 };

/** @type {esbuild.BuildOptions} */
const shared = {
  bundle: true,
  target: ["es2022", "chrome111", "firefox111", "safari16.4"],
  platform: "browser",
  charset: "utf8",
  legalComments: "none",
  logLevel: "warning",
  absWorkingDir: root,
};
/** @type {esbuild.BuildOptions} */
const devOptions = { sourcemap: "inline", minify: false };
/** @type {esbuild.BuildOptions} */
const prodOptions = { sourcemap: false, minify: true };

/**
 * Merges the shared options, the dev or prod ones and the build's own (defines are merged).
 * @param {esbuild.BuildOptions} own
 * @returns {esbuild.BuildOptions}
 */
function options(own) {
  const mode = dev ? devOptions : prodOptions;
  return { ...shared, ...mode, ...own, define: { ...shared.define, ...mode.define, ...own.define } };
}

/** Builds npm/dist/tsconnect.wasm and copies wasm_exec.js from the same Go toolchain. */
function buildWasm() {
  const goroot = execFileSync("go", ["env", "GOROOT"], { encoding: "utf8" }).trim();
  fs.mkdirSync(r("npm/dist"), { recursive: true });
  fs.mkdirSync(r("npm/build"), { recursive: true });
  fs.copyFileSync(path.join(goroot, "lib/wasm/wasm_exec.js"), r("npm/build/wasm_exec.js"));
  // TSCONNECT_WASM_SYMBOLS=1 keeps the wasm's name section (Go function names) for CPU
  // profiles (e2e/browser/termprofile.mjs); the shipped build is stripped.
  const names = process.env.TSCONNECT_WASM_SYMBOLS === "1";
  const ldflags = names ? "-ldflags=-w" : "-ldflags=-s -w";
  for (const [out, pkg] of [
    ["npm/dist/tsconnect.wasm", "./wasm"],
    // The SFTP client: a second wasm, loaded only for file transfer (docs/architecture.md "Budgets").
    ["npm/dist/tsconnect-files.wasm", "./wasmfiles"],
  ]) {
    // Go links into npm/build; wasm-opt -Oz writes the shipped file (scripts/wasmopt.mjs).
    const linked = r(path.join("npm/build", path.basename(out)));
    execFileSync("go", ["build", "-trimpath", ldflags, "-o", linked, pkg], {
      cwd: root,
      stdio: "inherit",
      env: { ...process.env, GOOS: "js", GOARCH: "wasm" },
    });
    optimizeWasm(linked, r(out), { names });
  }
}

/** @param {Buffer} b */
const brotli = (b) =>
  zlib.brotliCompressSync(b, {
    params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: b.length },
  });
/** @param {Buffer} b */
const gzip = (b) => zlib.gzipSync(b, { level: 9 });
/** @param {Buffer} b */
const shortHash = (b) => createHash("sha256").update(b).digest("base64url").slice(0, 10);

/** Removes the previous build of a dist directory, keeping its .gitkeep. @param {string} dir */
function clean(dir) {
  fs.mkdirSync(dir, { recursive: true });
  for (const e of fs.readdirSync(dir)) {
    if (e !== ".gitkeep" && e !== "tsconnect.wasm" && e !== "tsconnect-files.wasm")
      fs.rmSync(path.join(dir, e), { recursive: true, force: true });
  }
}

async function bundle() {
  const wasmPath = r("npm/dist/tsconnect.wasm");
  if (!fs.existsSync(wasmPath) || !fs.existsSync(r("npm/build/wasm_exec.js"))) {
    throw new Error("tsconnect.wasm or wasm_exec.js missing: run `node esbuild.config.js wasm` first (npm run build does)");
  }
  const wasm = fs.readFileSync(wasmPath);
  const filesWasmPath = r("npm/dist/tsconnect-files.wasm");
  if (!fs.existsSync(filesWasmPath)) throw new Error("tsconnect-files.wasm missing: run `node esbuild.config.js wasm` first");
  const filesWasm = fs.readFileSync(filesWasmPath);

  // The Worker: worker.ts with wasm_exec.js, a classic-worker IIFE inlined into the package.
  const worker = await esbuild.build(options({ entryPoints: [r("npm/src/worker.ts")], format: "iife", write: false }));
  const workerSource = worker.outputFiles?.[0]?.text ?? "";
  const workerDefine = { __TSCONNECT_WORKER__: JSON.stringify(workerSource) };

  // The npm package: ESM, xterm left to the consumer (peer dependency), types hand-written.
  clean(r("npm/dist"));
  await esbuild.build(
    options({
      entryPoints: { index: r("npm/src/index.ts"), terminal: r("npm/src/terminal.ts") },
      outdir: r("npm/dist"),
      format: "esm",
      external: [
        "@xterm/xterm",
        "@xterm/addon-fit",
        "@xterm/addon-unicode11",
        "@xterm/addon-web-links",
        "@xterm/addon-search",
        "@xterm/addon-webgl",
      ],
      minify: false,
      define: workerDefine,
    }),
  );
  for (const f of ["index.d.ts", "terminal.d.ts"]) fs.copyFileSync(r(`npm/types/${f}`), r(`npm/dist/${f}`));

  // The demo page: hashed bundles under web/dist/assets, index.html from the template.
  const web = r("web/dist");
  clean(web);
  const assets = path.join(web, "assets");
  fs.mkdirSync(assets, { recursive: true });
  const wasmName = `assets/tsconnect-${shortHash(wasm)}.wasm`;
  fs.copyFileSync(wasmPath, path.join(web, wasmName));
  const filesWasmName = `assets/tsconnect-files-${shortHash(filesWasm)}.wasm`;
  fs.copyFileSync(filesWasmPath, path.join(web, filesWasmName));
  const result = await esbuild.build(
    options({
      entryPoints: [r("web/src/main.ts")],
      outdir: assets,
      entryNames: "[name]-[hash]",
      assetNames: "[name]-[hash]",
      // Split: @xterm/addon-webgl's dynamic import (npm/src/terminal.ts) becomes a chunk
      // fetched only when a terminal draws with WebGL.
      splitting: true,
      chunkNames: "chunk-[hash]",
      format: "esm",
      metafile: true,
      define: {
        ...workerDefine,
        __TSCONNECT_WASM_URL__: JSON.stringify(wasmName),
        __TSCONNECT_FILES_WASM_URL__: JSON.stringify(filesWasmName),
      },
    }),
  );
  const entry = Object.entries(result.metafile?.outputs ?? {}).find(([, o]) => o.entryPoint === "web/src/main.ts");
  if (!entry) throw new Error("esbuild metafile has no output for web/src/main.ts");
  const rel = (/** @type {string} */ p) => path.relative(web, path.join(root, p)).split(path.sep).join("/");
  const js = rel(entry[0]);
  const webglChunk = chunkWith(result.metafile, "@xterm/addon-webgl");
  const css = entry[1].cssBundle ? rel(entry[1].cssBundle) : undefined;
  const head = [
    css && `<link rel="stylesheet" href="${css}">`,
    `<link rel="modulepreload" href="${js}">`,
    `<link rel="preload" href="${wasmName}" as="fetch" type="application/wasm" crossorigin>`,
  ]
    .filter(Boolean)
    .join("\n");
  const html = fs
    .readFileSync(r("web/index.html"), "utf8")
    .replace("<!-- tsconnect:head -->", head)
    .replace("<!-- tsconnect:script -->", `<script type="module" src="${js}"></script>`);
  fs.writeFileSync(path.join(web, "index.html"), html);

  // The admin console: web/dist/admin/index.html and term.html (the child window's page:
  // HTML + CSS only, no scripts, no wasm), bundles under /assets/ with absolute URLs.
  const consoleFiles = await buildConsole(web, assets, workerDefine, `/${wasmName}`, `/${filesWasmName}`);

  // Precompressed siblings for the Go handler.
  for (const f of walk(web)) {
    if (!/\.(js|css|html|wasm|svg|json)$/.test(f)) continue;
    const b = fs.readFileSync(f);
    if (b.length < 1024) continue;
    fs.writeFileSync(f + ".gz", gzip(b));
    fs.writeFileSync(f + ".br", brotli(b));
  }

  // The size report.
  const wasmBr = fs.readFileSync(path.join(web, wasmName + ".br")).length;
  const wasmGz = fs.readFileSync(path.join(web, wasmName + ".gz")).length;
  const report = {
    wasm: { raw: wasm.length, gzip: wasmGz, brotli: wasmBr },
    // The file-transfer wasm, fetched only with the first file transfer: outside the budget.
    filesWasm: {
      raw: filesWasm.length,
      brotli: fs.readFileSync(path.join(web, filesWasmName + ".br")).length,
    },
    budget,
    withinBudget: wasm.length <= budget.raw && wasmBr <= budget.brotli,
    // The chunk of @xterm/addon-webgl under web/dist (e2e/browser/renderer.test.mjs checks who fetches it).
    webglChunk: rel(webglChunk),
    bundles: Object.fromEntries(
      [
        ["demo.js", path.join(web, js)],
        ["webgl-chunk.js", path.join(root, webglChunk)],
        ...(css ? [["demo.css", path.join(web, css)]] : []),
        ...Object.entries(consoleFiles),
      ].map(([name, f]) => [name, sizes(fs.readFileSync(/** @type {string} */ (f)))]),
    ),
    files: Object.fromEntries(
      [...walk(r("npm/dist")), ...walk(web)]
        .filter((f) => !/\.(gz|br)$/.test(f) && !f.endsWith(".gitkeep") && !f.endsWith("size-report.json"))
        .map((f) => [path.relative(root, f).split(path.sep).join("/"), fs.statSync(f).size]),
    ),
  };
  fs.writeFileSync(r("npm/dist/size-report.json"), JSON.stringify(report, null, 2) + "\n");
  const mb = (/** @type {number} */ n) => (n / 1e6).toFixed(2) + " MB";
  console.log(
    `tsconnect.wasm: ${mb(wasm.length)} raw, ${mb(wasmGz)} gzip, ${mb(wasmBr)} brotli (budget ${mb(budget.raw)} raw, ${mb(budget.brotli)} brotli)`,
  );
  console.log(
    `npm/dist/index.js: ${fs.statSync(r("npm/dist/index.js")).size} bytes; worker ${workerSource.length} bytes; page ${js} ${fs.statSync(path.join(web, js)).size} bytes`,
  );
  console.log(
    `console: ${Object.entries(report.bundles)
      .filter(([n]) => n.startsWith("console") || n.startsWith("term"))
      .map(([n, b]) => `${n} ${b.raw} raw / ${b.brotli} brotli`)
      .join(", ")} bytes`,
  );
  if (!report.withinBudget) console.warn("WARNING: tsconnect.wasm is over its size budget (see npm/dist/size-report.json)");
}

/**
 * Builds the console bundle (JS + CSS) and the child window's CSS into assets, and writes
 * web/dist/admin/index.html and term.html from their templates. Returns the built files by role.
 * @param {string} web @param {string} assets @param {Record<string, string>} workerDefine @param {string} wasmURL @param {string} filesWasmURL
 * @returns {Promise<Record<string, string>>}
 */
async function buildConsole(web, assets, workerDefine, wasmURL, filesWasmURL) {
  const result = await esbuild.build(
    options({
      entryPoints: { console: r("web/src/console/main.ts"), term: r("web/src/console/term.css") },
      outdir: assets,
      // The bundled terminal font (@fontsource/cascadia-mono), emitted as hashed assets.
      loader: { ".woff2": "file", ".woff": "file" },
      entryNames: "[name]-[hash]",
      assetNames: "[name]-[hash]",
      splitting: true,
      chunkNames: "chunk-[hash]",
      format: "esm",
      metafile: true,
      define: {
        ...workerDefine,
        __TSCONNECT_WASM_URL__: JSON.stringify(wasmURL),
        __TSCONNECT_FILES_WASM_URL__: JSON.stringify(filesWasmURL),
      },
    }),
  );
  const outputs = Object.entries(result.metafile?.outputs ?? {});
  const out = (/** @type {string} */ entry) => {
    const o = outputs.find(([, v]) => v.entryPoint === entry);
    if (!o) throw new Error(`esbuild metafile has no output for ${entry}`);
    return o;
  };
  const [consoleJS, consoleOut] = out("web/src/console/main.ts");
  const [termCSS] = out("web/src/console/term.css");
  if (!consoleOut.cssBundle) throw new Error("the console bundle has no CSS");
  const abs = (/** @type {string} */ p) => "/" + path.relative(web, path.join(root, p)).split(path.sep).join("/");
  const admin = path.join(web, "admin");
  fs.mkdirSync(admin, { recursive: true });
  const page = (/** @type {string} */ template, /** @type {string} */ head, /** @type {string} */ script) =>
    fs.readFileSync(r(template), "utf8").replace("<!-- tsconnect:head -->", head).replace("<!-- tsconnect:script -->", script);
  fs.writeFileSync(
    path.join(admin, "index.html"),
    page(
      "web/admin.html",
      [`<link rel="stylesheet" href="${abs(consoleOut.cssBundle)}">`, `<link rel="modulepreload" href="${abs(consoleJS)}">`].join("\n"),
      `<script type="module" src="${abs(consoleJS)}"></script>`,
    ),
  );
  const term = page("web/term.html", `<link rel="stylesheet" href="${abs(termCSS)}">`, "");
  if (/<script/i.test(term) || /\.wasm/.test(term)) throw new Error("web/term.html must stay without scripts and wasm");
  fs.writeFileSync(path.join(admin, "term.html"), term);
  const consoleWebgl = chunkWith(result.metafile, "@xterm/addon-webgl");
  return {
    "console.js": path.join(root, consoleJS),
    "console-webgl-chunk.js": path.join(root, consoleWebgl),
    "console.css": path.join(root, consoleOut.cssBundle),
    "term.css": path.join(root, termCSS),
    "admin/index.html": path.join(admin, "index.html"),
    "admin/term.html": path.join(admin, "term.html"),
  };
}

/**
 * The output of metafile (a code-split build) that the dynamic import of the package pkg
 * became (esbuild names that import its entry point).
 * @param {esbuild.Metafile | undefined} metafile @param {string} pkg @returns {string}
 */
function chunkWith(metafile, pkg) {
  const found = Object.entries(metafile?.outputs ?? {}).find(
    ([name, o]) => name.endsWith(".js") && String(o.entryPoint ?? "").includes(`node_modules/${pkg}/`),
  );
  if (!found) throw new Error(`esbuild: no chunk of its own holds ${pkg} (is it imported statically somewhere?)`);
  return found[0];
}

/** Raw, gzip and brotli sizes of a file's bytes. @param {Buffer} b */
const sizes = (b) => ({ raw: b.length, gzip: gzip(b).length, brotli: brotli(b).length });

/** @param {string} dir @returns {string[]} */
function walk(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? walk(p) : [p];
  });
}

const step = process.argv[2];
if (step === "wasm") buildWasm();
else if (step === "bundle") await bundle();
else {
  console.error("usage: node esbuild.config.js wasm | bundle [--dev]   (npm run build runs both)");
  process.exit(2);
}
