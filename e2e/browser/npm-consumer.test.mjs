// The npm package as a stranger uses it: `npm pack` npm/, install the tarball into a fresh
// project, bundle an embedding page with esbuild and with Vite 7, serve each on its own
// loopback origin (control is another origin), and in Chromium get shells on a test agent:
// two IPNs in one page, a terminal in a child window, error codes, no globals of ours; and
// (esbuild only) an interactive login: no key, sign in on control's page, then a shell.
// Needs `npm run build` and bin/tsconnect; the npm cache makes the install fast after once.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, readdirSync, statSync, copyFileSync, rmSync, existsSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir, userInfo } from "node:os";
import { join, dirname, extname } from "node:path";
import { gzipSync } from "node:zlib";
import { launch, waitTerminal, root, bin as defaultBin, artifacts, ensureArtifacts } from "./demo.js";
import { files, deps, esbuildIndex } from "./npm-consumer-app.mjs";

const bin = process.env.TSCONNECT_BIN || defaultBin;
const work = mkdtempSync(join(tmpdir(), "tsconnect-npm-consumer-"));
const consumer = join(work, "consumer");
const figures = {};
let control; // {url, state, procs}
let browser;

const run = (cmd, args, opts = {}) => execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], ...opts });

/** Spawns a tsconnect process and resolves with its stderr once it matches re. */
function spawnUntil(args, re, procs) {
  const proc = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"] });
  procs.push(proc);
  let log = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tsconnect ${args[0]} did not become ready in 60 s:\n${log}`)), 60_000);
    const onData = (d) => {
      log += d;
      const m = log.match(re);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    };
    proc.stderr.on("data", onData);
    proc.stdout.on("data", onData);
    proc.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`tsconnect ${args[0]} exited ${code}:\n${log}`));
    });
  });
}

/** control + a user + a policy + an SSH agent, as an operator sets them up. */
async function startNetwork() {
  const state = join(work, "control");
  const procs = [];
  const [, url] = await spawnUntil(
    ["control", "--listen", "127.0.0.1:0", "--state", state, "--ephemeral-grace", "5s"],
    /control: serving (\S+) on/,
    procs,
  );
  const email = "dev@consumer.test";
  const password = "consumer-test-password";
  const localUser = userInfo().username;
  run(bin, ["users", "create", "--state", state, "--admin", "--password-stdin", email], {
    input: password + "\n",
    stdio: ["pipe", "pipe", "pipe"],
  });
  const policy = join(work, "policy.hujson");
  writeFileSync(
    policy,
    JSON.stringify({
      acls: [{ action: "accept", src: ["*"], dst: ["*:*"] }],
      ssh: [{ action: "accept", src: [email], dst: ["autogroup:self"], users: [localUser] }],
    }),
  );
  run(bin, ["policy", "set", "--state", state, policy]);
  const lastLine = (s) => s.trim().split("\n").pop().trim();
  const agentKey = lastLine(run(bin, ["keys", "create", "--state", state, "--user", email]));
  const browserKey = lastLine(
    run(bin, ["keys", "create", "--state", state, "--user", email, "--ephemeral", "--reusable", "--expiry", "1h"]),
  );
  const [, host] = await spawnUntil(
    [
      "--socket",
      join(work, "agent.sock"),
      "up",
      "--ssh",
      "--hostname",
      "consumer-agent",
      "--login-server",
      url,
      "--auth-key",
      agentKey,
      "--state",
      join(work, "agent"),
    ],
    /up: node (\S+),/,
    procs,
  );
  return { url, state, procs, host, user: localUser, browserKey, email, password };
}

/** Installs the packed tarball and the bundlers into a fresh project. */
function makeConsumer() {
  const packed = JSON.parse(run("npm", ["pack", "--json", "--pack-destination", work], { cwd: join(root, "npm") }))[0];
  const tarball = join(work, packed.filename);
  figures.tarball = {
    file: packed.filename,
    bytes: statSync(tarball).size,
    unpackedBytes: packed.unpackedSize,
    files: packed.files.map((f) => f.path),
  };
  for (const [p, text] of Object.entries(files)) {
    mkdirSync(dirname(join(consumer, p)), { recursive: true });
    writeFileSync(join(consumer, p), text);
  }
  const started = Date.now();
  run(
    "npm",
    [
      "install",
      "--prefer-offline",
      "--no-audit",
      "--no-fund",
      "--loglevel=error",
      tarball,
      ...Object.entries(deps).map(([n, v]) => `${n}@${v}`),
    ],
    { cwd: consumer },
  );
  figures.installMs = Date.now() - started;
}

let esbuildOut;
function buildEsbuild() {
  if (esbuildOut) return esbuildOut;
  const out = join(consumer, "dist-esbuild");
  run(
    join(consumer, "node_modules/.bin/esbuild"),
    [
      "src/main-esbuild.js",
      "--bundle",
      "--format=esm",
      "--minify",
      "--loader:.wasm=file",
      "--asset-names=[name]-[hash]",
      `--outdir=${out}`,
      "--log-level=warning",
    ],
    { cwd: consumer },
  );
  writeFileSync(join(out, "index.html"), esbuildIndex(files["index.html"]));
  for (const f of ["term.html", "linked.html"]) copyFileSync(join(consumer, "public", f), join(out, f));
  return (esbuildOut = out);
}

function buildVite() {
  const out = join(consumer, "dist-vite");
  run(join(consumer, "node_modules/.bin/vite"), ["build", "--outDir", out, "--emptyOutDir", "--logLevel", "warn"], { cwd: consumer });
  return out;
}

/** Sizes of a build's files: scripts, styles and wasm (raw and gzip). */
function sizes(dir) {
  const all = {};
  const walk = (d) =>
    readdirSync(d, { withFileTypes: true }).forEach((e) => {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else all[p.slice(dir.length + 1)] = statSync(p).size;
    });
  walk(dir);
  const sum = (ext) =>
    Object.entries(all)
      .filter(([p]) => extname(p) === ext)
      .reduce(
        (a, [p]) => {
          const b = readFileSync(join(dir, p));
          return { raw: a.raw + b.length, gzip: a.gzip + gzipSync(b, { level: 9 }).length };
        },
        { raw: 0, gzip: 0 },
      );
  return { js: sum(".js"), css: sum(".css"), wasm: sum(".wasm").raw, files: all };
}

const types = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript",
  ".css": "text/css",
  ".wasm": "application/wasm",
  ".json": "application/json",
};

/** Serves dir on a loopback port with a CSP that allows no inline scripts; config.json tells the page where control is. */
async function serve(dir, net) {
  const config = JSON.stringify({ controlURL: net.url, authKey: net.browserKey, host: net.host, user: net.user });
  const control = new URL(net.url);
  const csp = [
    "default-src 'self'",
    "script-src 'self' 'wasm-unsafe-eval'",
    "worker-src 'self' blob:",
    "style-src 'self' 'unsafe-inline'",
    `connect-src 'self' ${control.origin} ws://${control.host}`,
    "img-src 'self' data:",
    "object-src 'none'",
    "base-uri 'none'",
  ].join("; ");
  const requests = [];
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    requests.push(path);
    if (path === "/config.json") {
      res.writeHead(200, { "content-type": types[".json"], "cache-control": "no-store" });
      return res.end(config);
    }
    if (path === "/favicon.ico") {
      res.writeHead(204);
      return res.end();
    }
    const file = join(dir, path === "/" ? "index.html" : path);
    if (!file.startsWith(dir) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404);
      return res.end();
    }
    res.writeHead(200, { "content-type": types[extname(file)] || "application/octet-stream", "content-security-policy": csp });
    res.end(readFileSync(file));
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", () => r(undefined)));
  return {
    url: `http://127.0.0.1:${/** @type {import("node:net").AddressInfo} */ (server.address()).port}/`,
    requests,
    close: () => new Promise((r) => server.close(r)),
  };
}

const statusText = (page) => page.locator("#status").textContent();
async function waitStatus(page, re, timeout = 30_000) {
  await page.locator("#status").filter({ hasText: re }).waitFor({ timeout });
  return statusText(page);
}

/** Reads the terminal inside one container of the page. */
async function termText(page, sel) {
  return page.evaluate((sel) => {
    const rows = document.querySelector(`${sel} .xterm-rows`);
    return rows ? Array.from(rows.children, (r) => r.textContent.replace(/\u00a0/g, " ")).join("\n") : "";
  }, sel);
}
async function waitTerm(page, sel, re, timeout = 20_000) {
  const deadline = Date.now() + timeout;
  let text = "";
  while (Date.now() < deadline) {
    text = await termText(page, sel);
    if (re.test(text)) return text;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`terminal ${sel} never matched ${re}; it shows:\n${text}`);
}

before(async () => {
  if (!existsSync(bin)) throw new Error(`${bin} is missing: go build -o bin/tsconnect ./cmd/tsconnect`);
  if (!existsSync(join(root, "npm/dist/tsconnect.wasm"))) throw new Error("npm/dist is not built: npm run build");
  makeConsumer();
  control = await startNetwork();
  browser = await launch();
});

after(async () => {
  await browser?.close();
  for (const p of control?.procs ?? []) p.kill("SIGTERM");
  await Promise.all((control?.procs ?? []).map((p) => new Promise((r) => (p.exitCode !== null ? r(undefined) : p.on("exit", r)))));
  ensureArtifacts();
  writeFileSync(join(artifacts, "npm-consumer-sizes.json"), JSON.stringify(figures, null, 2) + "\n");
  rmSync(work, { recursive: true, force: true });
});

test("npm pack ships the built package and nothing else", () => {
  const f = figures.tarball.files.sort();
  assert.deepEqual(f, [
    "README.md",
    "dist/index.d.ts",
    "dist/index.js",
    "dist/terminal.d.ts",
    "dist/terminal.js",
    "dist/tsconnect-files.wasm",
    "dist/tsconnect.wasm",
    "package.json",
  ]);
  const pkg = JSON.parse(readFileSync(join(consumer, "node_modules/@tsconnect/connect/package.json"), "utf8"));
  assert.equal(pkg.name, "@tsconnect/connect");
  assert.match(pkg.version, /^\d+\.\d+\.\d+/);
});

test("the shipped types check a strict TypeScript consumer", () => {
  run(join(consumer, "node_modules/.bin/tsc"), ["-p", "."], { cwd: consumer });
});

for (const [bundler, build] of /** @type {const} */ ([
  ["esbuild", buildEsbuild],
  ["vite", buildVite],
])) {
  test(`a page bundled with ${bundler} gets shells, a child-window terminal and coded errors`, async (t) => {
    const out = build();
    figures[bundler] = sizes(out);
    t.diagnostic(
      `${bundler}: js ${figures[bundler].js.raw} B (${figures[bundler].js.gzip} gzip), css ${figures[bundler].css.raw} B, wasm ${figures[bundler].wasm} B`,
    );
    const site = await serve(out, control);
    t.after(() => site.close());
    const context = await browser.newContext();
    t.after(() => context.close());
    const origin = new URL(site.url).origin;
    await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin });
    const page = await context.newPage();
    const problems = [];
    page.on("pageerror", (e) => problems.push(String(e)));
    page.on("console", (m) => {
      if (m.type() === "error") problems.push(m.text());
    });

    await page.goto(site.url);
    await waitStatus(page, /^ready$/m, 60_000);
    assert.ok(
      site.requests.some((p) => p.endsWith(".wasm")),
      "the page fetched the wasm from its own origin",
    );

    // Two IPNs, two terminals, two shells, independent.
    await waitTerm(page, "#t1", /[$#] *$/m);
    await waitTerm(page, "#t2", /[$#] *$/m);
    await page.locator("#t1 .xterm-helper-textarea").focus();
    await page.keyboard.type("echo $((6*7))\n");
    await waitTerm(page, "#t1", /^42\s*$/m);
    await page.locator("#t2 .xterm-helper-textarea").focus();
    await page.keyboard.type("echo $((6*9))\n");
    await waitTerm(page, "#t2", /^54\s*$/m);
    assert.doesNotMatch(await termText(page, "#t1"), /^54\s*$/m, "each terminal shows its own session only");

    // A terminal in a child window: it runs no script of its own and fetches no wasm.
    const popupRequests = [];
    context.on("request", (r) => {
      let fromPage = false;
      try {
        fromPage = r.frame().page() === page;
      } catch {
        /* the child's navigation, before its frame exists */
      }
      if (!fromPage) popupRequests.push(r.url());
    });
    const [popup] = await Promise.all([context.waitForEvent("page"), page.locator("#popup").click()]);
    await popup.waitForLoadState();
    await waitStatus(page, /^popup connected$/m);
    await waitTerminal(popup, /[$#] *$/m);
    assert.equal(await popup.title(), `${control.user}@${control.host}`);
    assert.ok(
      popupRequests.every((u) => /\/term\.html$|\.css$/.test(u)),
      `the child fetched only its page and CSS: ${popupRequests}`,
    );
    assert.equal(await popup.evaluate(() => document.scripts.length), 0, "the child page has no scripts");
    // xterm's CSS is in force there (the helper textarea is hidden off-flow).
    assert.equal(
      await popup.evaluate(() => getComputedStyle(/** @type {Element} */ (document.querySelector(".xterm-helper-textarea"))).position),
      "absolute",
    );
    // ... brought by openTerminal: the page's linked sheet (esbuild) or a copy of its constructed one (Vite).
    const styles = await popup.evaluate(() => ({
      links: Array.from(
        document.querySelectorAll("link[rel=stylesheet]"),
        (l) => new URL(/** @type {HTMLLinkElement} */ (l).href).pathname,
      ),
      adopted: document.adoptedStyleSheets.length,
    }));
    if (bundler === "esbuild") assert.deepEqual(styles, { links: ["/main-esbuild.css"], adopted: 0 });
    else assert.deepEqual(styles, { links: [], adopted: 1 });

    await popup.locator(".xterm-helper-textarea").focus();
    await popup.keyboard.type("echo $((6*7))\n");
    await waitTerminal(popup, /^42\s*$/m);

    // It fits the window and follows its resizes: the PTY's width changes with it.
    await popup.keyboard.type("clear; echo cols=$(tput cols)\n");
    const colsBefore = Number((await waitTerminal(popup, /^cols=\d+/m)).match(/^cols=(\d+)/m)?.[1]);
    const charWidth =
      (await popup.evaluate(() => /** @type {Element} */ (document.querySelector(".xterm-screen")).getBoundingClientRect().width)) /
      colsBefore;
    const vp = popup.viewportSize() ?? { width: 720, height: 420 };
    assert.ok(colsBefore >= Math.floor((vp.width - 40) / charWidth), `the terminal fills the window: ${colsBefore} columns`);
    await popup.setViewportSize({ width: Math.round(vp.width / 2), height: vp.height });
    await popup.keyboard.type("clear; echo cols=$(tput cols)\n");
    const text = await waitTerminal(popup, new RegExp(`^cols=(?!${colsBefore}\\b)\\d+`, "m"));
    const afterCols = Number(text.match(/^cols=(\d+)/m)?.[1]);
    assert.ok(
      afterCols < colsBefore && afterCols >= Math.floor(colsBefore / 2) - 6,
      `columns follow the window: ${colsBefore} → ${afterCols}`,
    );
    figures[`${bundler}Popup`] = { colsBefore: colsBefore, colsAfter: afterCols };

    // Copy on select lands on the child's clipboard; paste from it reaches the shell.
    await popup.keyboard.type("echo copy-me-$((1+1))\n");
    await waitTerminal(popup, /^copy-me-2\s*$/m);
    const row = popup.locator(".xterm-rows > div", { hasText: /^copy-me-2\s*$/ }).first();
    const box = await row.boundingBox();
    await popup.mouse.dblclick(box.x + 20, box.y + box.height / 2);
    await popup.waitForFunction(() => navigator.clipboard.readText().then((s) => s === "copy-me-2"), null, { timeout: 5_000 });
    await popup.evaluate(() => navigator.clipboard.writeText("echo pasted-$((40+2))"));
    await popup.locator(".xterm-helper-textarea").focus();
    await popup.keyboard.press("Control+Shift+V");
    await popup.keyboard.press("Enter");
    await waitTerminal(popup, /^pasted-42\s*$/m);

    // A link in the output opens in a new tab of the child, without an opener.
    const link = `${origin}/linked.html`;
    await popup.keyboard.type(`clear; echo ${link}\n`);
    await waitTerminal(popup, /^http:\S+linked\.html\s*$/m);
    const linkRow = popup.locator(".xterm-rows > div", { hasText: /^http:\S+linked\.html\s*$/ }).first();
    const lb = await linkRow.boundingBox();
    await popup.mouse.move(lb.x + 30, lb.y + lb.height / 2);
    const [opened] = await Promise.all([context.waitForEvent("page"), popup.mouse.click(lb.x + 30, lb.y + lb.height / 2)]);
    await opened.waitForLoadState();
    assert.equal(opened.url(), link);
    assert.equal(await opened.evaluate(() => window.opener), null);
    await opened.close();

    ensureArtifacts();
    await popup.screenshot({ path: join(artifacts, `npm-consumer-${bundler}-popup.png`) });
    await page.screenshot({ path: join(artifacts, `npm-consumer-${bundler}-page.png`) });

    // Closing the child ends its session only.
    await popup.close();
    await waitStatus(page, /^popup done -1 closed$/m);
    await page.locator("#t1 .xterm-helper-textarea").focus();
    await page.keyboard.type("echo still-$((1+2))\n");
    await waitTerm(page, "#t1", /^still-3\s*$/m);

    // Errors are Errors with a code.
    await page.locator("#badkey").click();
    assert.match(await waitStatus(page, /^badkey: /m), /^badkey: true invalid_key$/m);

    // Nothing of ours landed on the page's global object.
    await page.locator("#globals").click();
    await page.locator("#globals-out").filter({ hasText: /^\[/ }).waitFor();
    assert.deepEqual(JSON.parse(await page.locator("#globals-out").textContent()), []);

    await page.locator("#t1 .xterm-helper-textarea").focus();
    await page.keyboard.type("exit\n");
    await waitStatus(page, /^t1 done 0 $/m);
    assert.deepEqual(problems, []);
  });
}

test("interactive login: a page without a key shows the sign-in URL; signing in on control lets the node in as that user", async (t) => {
  const site = await serve(buildEsbuild(), control);
  t.after(() => site.close());
  const context = await browser.newContext();
  t.after(() => context.close());
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(String(e)));
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(m.text());
  });

  await page.goto(site.url + "?interactive");
  const status = await waitStatus(page, /^login-url: /m, 60_000);
  const loginURL = new URL(status.match(/^login-url: (\S+)$/m)[1]);
  const controlOrigin = new URL(control.url).origin;
  assert.equal(loginURL.origin, controlOrigin, "the sign-in URL is on the control server");
  assert.match(loginURL.pathname, /^\/login\/[A-Za-z0-9_-]{16,}$/);
  assert.match(status, /^login-state: needs-login$/m);
  assert.doesNotMatch(status, /^login: /m, "login() waits for the sign-in");
  const link = page.locator("#signin");
  assert.equal(await link.getAttribute("href"), loginURL.href);

  // The user follows the link: a new page of the same browser context, on control's origin.
  const [signin] = await Promise.all([context.waitForEvent("page"), link.click()]);
  await signin.waitForLoadState();
  assert.equal(signin.url(), loginURL.href);
  await signin.getByLabel("Email").fill(control.email);
  await signin.getByLabel("Password").fill(control.password);
  const started = Date.now();
  await signin.getByRole("button", { name: "Sign in" }).click();
  await signin.getByRole("button", { name: `Add consumer-login as ${control.email}` }).click();
  await signin.getByText(`consumer-login is now in the network as ${control.email}'s`).waitFor();

  // login() resolved, the node runs as that user, and gets a shell by the user's policy.
  const shown = await waitStatus(page, /^login: /m);
  figures.interactiveLogin = { confirmToRunningMs: Date.now() - started };
  assert.ok(shown.split("\n").includes(`login: running as ${control.email}`), shown);
  const states = shown.match(/^login-state: .*$/gm).map((l) => l.slice("login-state: ".length));
  assert.ok(states.indexOf("needs-login") < states.lastIndexOf("running"), `states in order: ${states}`);
  assert.equal(await link.isHidden(), true, "the link is gone once signed in");
  await waitTerm(page, "#t1", /[$#] *$/m);
  await page.locator("#t1 .xterm-helper-textarea").focus();
  await page.keyboard.type("echo $((6*7))\n");
  await waitTerm(page, "#t1", /^42\s*$/m);

  // Control lists the browser node as the user's own, ephemeral.
  const users = Object.fromEntries(
    run(bin, ["users", "list", "--state", control.state])
      .trim()
      .split("\n")
      .map((l) => l.trim().split(/\s+/))
      .map(([id, email]) => [Number(id), email]),
  );
  const nodes = JSON.parse(run(bin, ["nodes", "--json", "--state", control.state]));
  const node = nodes.find((n) => n.hostname === "consumer-login");
  assert.ok(node, `control lists the node: ${nodes.map((n) => n.name)}`);
  assert.equal(users[node.owner?.id], control.email);
  assert.deepEqual([node.os, node.ephemeral, node.online, node.tags ?? []], ["js", true, true, []]);

  // The URL was for one login only.
  await signin.goto(loginURL.href);
  await signin.getByText("This machine login is unknown or has expired").waitFor();

  await page.locator("#t1 .xterm-helper-textarea").focus();
  await page.keyboard.type("exit\n");
  await waitStatus(page, /^t1 done 0 $/m);
  assert.deepEqual(problems, []);
});
