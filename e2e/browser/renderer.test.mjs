// How the terminal is drawn, in Chromium on the demo page: by default here (this Chromium's only
// WebGL is SwiftShader, a software rasterizer) with xterm.js's DOM renderer, rows readable in
// .xterm-rows; with ?renderer=webgl by @xterm/addon-webgl (a WebGL2 canvas, no DOM rows); and a
// WebGL terminal whose context is lost goes on drawing with the DOM renderer.
// @xterm/addon-webgl is a chunk of its own (esbuild.config.js), fetched only by a terminal that
// draws with WebGL: the DOM pages never request it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { startDemo, launch, waitTerminal, terminalText, root } from "./demo.js";
import { install, drawnBy } from "./termprobe.mjs";

/** The WebGL addon's chunk, as the build's size report names it (a path under web/dist). */
const webglChunk = JSON.parse(readFileSync(join(root, "npm/dist/size-report.json"), "utf8")).webglChunk;

/** Opens a fresh demo URL with ?renderer=renderer (none: the default) at its shell prompt. */
async function openDemo(context, demo, renderer) {
  const u = new URL(await demo.takeURL());
  if (renderer) u.searchParams.set("renderer", renderer);
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  /** Whether the page requested the WebGL addon's chunk. */
  const fetched = { webgl: false };
  page.on("request", (r) => {
    if (new URL(r.url()).pathname === `/${webglChunk}`) fetched.webgl = true;
  });
  await page.goto(u.href);
  await waitTerminal(page, /[$#] *$/m, 30_000);
  await page.locator(".xterm-helper-textarea").focus();
  return { page, errors, fetched };
}

/** Types a command whose output is computed (not the echoed line) and waits for it drawn. */
async function roundTrip(page, n) {
  await page.keyboard.type(`echo R$((${n}*3))R\n`);
  await waitTerminal(page, new RegExp(`^R${n * 3}R\\s*$`, "m"));
}

test("the terminal draws with the DOM renderer by default, WebGL on request, DOM again after a lost context", async (t) => {
  const demo = await startDemo();
  t.after(() => demo.stop());
  const browser = await launch();
  t.after(() => browser.close());
  const context = await browser.newContext({ viewport: { width: 900, height: 600 } });
  // The probe reads a WebGL terminal's rows from its buffer (there are no DOM rows to read).
  await install(context);

  await t.test("default: DOM rows, since the only WebGL here is software", async () => {
    const { page, errors, fetched } = await openDemo(context, demo);
    assert.equal(await drawnBy(page), "dom");
    assert.equal(fetched.webgl, false, `the DOM page requested the WebGL chunk ${webglChunk}`);
    await roundTrip(page, 14);
    const rows = await page.locator(".xterm-rows").innerText();
    assert.match(rows, /R42R/, "the output is text in .xterm-rows");
    assert.deepEqual(errors, []);
    await page.close();
  });

  await t.test("?renderer=dom: DOM rows", async () => {
    const { page, fetched } = await openDemo(context, demo, "dom");
    assert.equal(await drawnBy(page), "dom");
    await roundTrip(page, 5);
    assert.equal(fetched.webgl, false, `?renderer=dom requested the WebGL chunk ${webglChunk}`);
    await page.close();
  });

  await t.test("?renderer=webgl: a WebGL canvas, then the DOM renderer once its context is lost", async () => {
    const { page, errors, fetched } = await openDemo(context, demo, "webgl");
    assert.equal(fetched.webgl, true, `?renderer=webgl did not request the WebGL chunk ${webglChunk}`);
    // The addon arrives after the terminal opened (the DOM renderer draws until then).
    await page.waitForFunction(() => document.querySelectorAll(".xterm-screen canvas").length > 0, null, { timeout: 10_000 });
    assert.equal(await drawnBy(page), "webgl");
    assert.equal(await page.locator(".xterm-rows > *").count(), 0, "no DOM rows while WebGL draws");
    await roundTrip(page, 7);
    const lost = await page.evaluate(() => {
      for (const c of document.querySelectorAll(".xterm-screen canvas")) {
        const gl = /** @type {HTMLCanvasElement} */ (c).getContext("webgl2");
        const ext = gl?.getExtension("WEBGL_lose_context");
        if (ext) {
          ext.loseContext();
          return true;
        }
      }
      return false;
    });
    assert.ok(lost, "the WebGL canvas lost its context");
    await page.waitForFunction(() => (document.querySelector(".xterm-rows")?.childElementCount ?? 0) > 0, null, { timeout: 10_000 });
    assert.equal(await drawnBy(page), "dom");
    await roundTrip(page, 11);
    assert.match(await terminalText(page), /R33R/);
    assert.deepEqual(errors, []);
    await page.close();
  });
});
