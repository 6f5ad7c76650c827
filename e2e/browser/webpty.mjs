// The reference web terminal for the browser benchmarks and tests (e2e/tools/webpty): its page
// bundled with the project's esbuild and xterm.js, the Go server on loopback.
import { spawn } from "node:child_process";
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as esbuild from "esbuild";
import { root } from "./demo.js";
import { goTool } from "./console-harness.mjs";

/**
 * Builds and starts webpty; resolves with its page URL (a fresh shell per load), the URL of
 * its local-only page (xterm.js alone), the assets directory it serves (put files there to
 * fetch them from the page) and stop().
 */
export async function startWebPTY() {
  const assets = mkdtempSync(join(tmpdir(), "tsconnect-webpty-"));
  const src = join(root, "e2e", "tools", "webpty");
  await esbuild.build({
    entryPoints: { page: join(src, "page.js") },
    bundle: true,
    minify: true,
    format: "iife",
    target: ["chrome111"],
    outdir: assets,
    logLevel: "warning",
  });
  copyFileSync(join(src, "index.html"), join(assets, "index.html"));
  const tool = await goTool("webpty");
  const proc = spawn(tool, ["--assets", assets], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  proc.stderr.on("data", (d) => {
    out += d;
  });
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`webpty printed no URL in 30 s:\n${out}`)), 30_000);
    proc.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/^URL: (\S+)$/m);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    proc.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`webpty exited ${code}:\n${out}`));
    });
  }).catch((e) => {
    proc.kill("SIGTERM");
    rmSync(assets, { recursive: true, force: true });
    throw e;
  });
  const local = new URL(url);
  local.searchParams.set("local", "1");
  return {
    url,
    localURL: local.href,
    assets,
    log: () => out,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill("SIGTERM");
        await new Promise((r) => proc.on("exit", r));
      }
      rmSync(assets, { recursive: true, force: true });
    },
  };
}
