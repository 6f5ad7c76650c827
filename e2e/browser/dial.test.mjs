// ipn.dial in Chromium against a real agent: the npm package's built module in a page, a
// wasm node dialing the agent's overlay port 5900, which `tsconnect up --vnc` forwards to a
// TCP service of this test. Bytes echo back, 64 MiB arrive with the sha256 they left with, a
// reader that does not read holds the service's writes back, and a port the policy refuses
// fails at once with connection_refused. Needs `npm run build` and bin/tsconnect.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createServer as httpServer } from "node:http";
import { createServer as tcpServer } from "node:net";
import { readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { launch, root } from "./demo.js";
import { startConsoleNet, alice } from "./console-harness.mjs";

const dist = join(root, "npm", "dist");
// The policy lets members reach port 5900 of every node, nothing else.
const policy = `{"acls": [{"action": "accept", "src": ["autogroup:member"], "dst": ["*:5900"]}]}`;

// The forwarded service: the first byte picks echo ("E", sha256 of what passed kept) or a
// source ("S": writes until the socket stops taking bytes, counting them).
const seen = { echoSum: "", echoed: 0, sourced: 0 };
const service = tcpServer((c) => {
  c.once("data", (first) => {
    if (first[0] === 0x53) {
      const buf = Buffer.alloc(64 << 10);
      const pump = () => {
        while (c.writable && c.write(buf)) seen.sourced += buf.length;
        seen.sourced += buf.length;
      };
      c.on("drain", pump);
      c.on("error", () => {});
      pump();
      return;
    }
    const h = createHash("sha256");
    const pass = (d) => {
      h.update(d);
      seen.echoed += d.length;
      c.write(d);
    };
    pass(first.subarray(1));
    c.on("data", pass);
    c.on("end", () => {
      seen.echoSum = h.digest("hex");
      c.end();
    });
    c.on("error", () => {});
  });
});

let net;
let site;
let browser;
let page;

before(async () => {
  await new Promise((r) => service.listen(0, "127.0.0.1", () => r(undefined)));
  const port = /** @type {import("node:net").AddressInfo} */ (service.address()).port;
  net = await startConsoleNet({ tagged: [] });
  net.setPolicy(policy);
  await net.agent("vncbox", { tags: "", ssh: false, args: ["--vnc", `127.0.0.1:${port}`] });
  const authKey = net.admin(["keys", "create", "--user", alice.email, "--ephemeral", "--reusable"]).trim().split("\n").pop();
  const html = `<!doctype html><script type="module">
import { createIPN } from "./index.js";
window.dialTest = { createIPN, controlURL: ${JSON.stringify(net.url)}, authKey: ${JSON.stringify(authKey)} };
</script>`;
  const server = httpServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    if (path === "/") return res.writeHead(200, { "content-type": "text/html" }).end(html);
    const file = join(dist, path);
    if (!file.startsWith(dist) || !existsSync(file)) return res.writeHead(404).end();
    const type = file.endsWith(".wasm") ? "application/wasm" : "text/javascript";
    res.writeHead(200, { "content-type": type }).end(readFileSync(file));
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", () => r(undefined)));
  site = { url: `http://127.0.0.1:${/** @type {import("node:net").AddressInfo} */ (server.address()).port}/`, close: () => server.close() };
  browser = await launch({ args: ["--js-flags=--expose-gc"] });
  page = await browser.newPage();
  await page.goto(site.url);
  await page.waitForFunction(() => "dialTest" in window);
  const peer = await page.evaluate(async () => {
    const t = /** @type {any} */ (window).dialTest;
    const ipn = await t.createIPN({ controlURL: t.controlURL, authKey: t.authKey, hostname: "dialer" });
    /** @type {any} */
    let map;
    ipn.run({ notifyNetMap: (m) => (map = m) });
    await ipn.login();
    t.ipn = ipn;
    for (let i = 0; i < 200 && !map?.peers.some((p) => p.name === "vncbox"); i++) await new Promise((r) => setTimeout(r, 50));
    return map?.peers.find((p) => p.name === "vncbox");
  });
  assert.ok(peer, "the agent is in the page's map");
  assert.equal(peer.vnc, true, "the map says the agent forwards VNC");
});

after(async () => {
  await browser?.close();
  site?.close();
  await net?.stop();
  service.close();
});

test("a reader that does not read holds the service back; reading lets it flow", async () => {
  const heapOf = () =>
    page.evaluate(() => {
      /** @type {any} */ (window).gc();
      return /** @type {any} */ (performance).memory.usedJSHeapSize;
    });
  const heap0 = await heapOf();
  await page.evaluate(async () => {
    const t = /** @type {any} */ (window).dialTest;
    const s = await t.ipn.dial("vncbox", 5900);
    const w = s.writable.getWriter();
    await w.write(new TextEncoder().encode("S"));
    t.source = s;
  });
  let last = -1;
  for (let i = 0; i < 100 && seen.sourced !== last; i++) {
    last = seen.sourced;
    await new Promise((r) => setTimeout(r, 500));
  }
  const held = seen.sourced;
  const heap = (await heapOf()) - heap0;
  console.log(
    `dial figures: a reader that reads nothing: the service stopped after ${(held / 2 ** 20).toFixed(1)} MiB; page JS heap grew ${(heap / 2 ** 20).toFixed(1)} MiB`,
  );
  assert.ok(
    held > 0 && held < 32 << 20,
    `the service wrote ${held} bytes to a reader that reads nothing: want it held back (< 32 MiB of buffers)`,
  );
  assert.ok(
    heap < 8 << 20,
    `the page's heap grew ${heap} bytes while its reader read nothing: want the unread bytes held back, not piled up in the page`,
  );
  const read = await page.evaluate(async () => {
    const s = /** @type {any} */ (window).dialTest.source;
    const r = s.readable.getReader();
    let n = 0;
    while (n < 16 << 20) n += (await r.read()).value.length;
    s.close();
    return n;
  });
  assert.ok(read >= 16 << 20 && seen.sourced > held, "reading again let the service write on");
});

test("echo through the agent's forward, 64 MiB with the same sha256", async () => {
  const r = await page.evaluate(async () => {
    const { ipn } = /** @type {any} */ (window).dialTest;
    const s = await ipn.dial("vncbox", 5900);
    const w = s.writable.getWriter();
    const total = 64 << 20;
    const chunk = new Uint8Array(1 << 20);
    const started = performance.now();
    const writing = (async () => {
      await w.write(new TextEncoder().encode("E"));
      let x = 2463534242;
      for (let sent = 0; sent < total; sent += chunk.length) {
        for (let i = 0; i < chunk.length; i++) {
          x ^= x << 13;
          x ^= x >>> 17;
          x ^= x << 5;
          chunk[i] = x & 0xff;
        }
        await w.write(chunk);
      }
      await w.close();
    })();
    const got = new Uint8Array(total);
    let n = 0;
    for await (const c of s.readable) {
      got.set(c.subarray(0, Math.min(c.length, total - n)), n);
      n += c.length;
    }
    await writing;
    const ms = performance.now() - started;
    const sum = [...new Uint8Array(await crypto.subtle.digest("SHA-256", got))].map((b) => b.toString(16).padStart(2, "0")).join("");
    return { n, sum, ms };
  });
  // The same generator here: what the page sent.
  const want = createHash("sha256");
  const chunk = Buffer.alloc(1 << 20);
  let x = 2463534242;
  for (let sent = 0; sent < 64 << 20; sent += chunk.length) {
    for (let i = 0; i < chunk.length; i++) {
      x = (x ^ (x << 13)) >>> 0;
      x = (x ^ (x >>> 17)) >>> 0;
      x = (x ^ (x << 5)) >>> 0;
      chunk[i] = x & 0xff;
    }
    want.update(chunk);
  }
  const wantSum = want.digest("hex");
  assert.equal(seen.echoSum, wantSum, "the service got the page's 64 MiB byte for byte");
  assert.equal(r.n, 64 << 20, "the page read back 64 MiB");
  assert.equal(r.sum, wantSum, "and the same sha256");
  console.log(
    `dial figures: 64 MiB echoed through the agent in ${(r.ms / 1000).toFixed(1)} s (${((64 * 1000) / r.ms).toFixed(1)} MiB/s each way)`,
  );
});

test("a port the policy refuses fails at once with connection_refused", async () => {
  const r = await page.evaluate(async () => {
    const { ipn } = /** @type {any} */ (window).dialTest;
    const t0 = performance.now();
    try {
      await ipn.dial("vncbox", 5901);
      return { ok: true };
    } catch (err) {
      const e = /** @type {any} */ (err);
      return { code: e.code, message: e.message, ms: performance.now() - t0 };
    }
  });
  assert.equal(r.code, "connection_refused", JSON.stringify(r));
  assert.match(r.message, /vncbox .* refused port 5901/);
  assert.ok(r.ms < 3000, `refused after ${r.ms} ms: want at once, not a timeout`);
  const bad = await page.evaluate(async () => {
    const { ipn } = /** @type {any} */ (window).dialTest;
    return Promise.all(
      [
        ["vncbox", 0],
        ["vncbox", 70000],
        ["x".repeat(300), 80],
      ].map(([h, p]) =>
        ipn.dial(h, p).then(
          () => "connected",
          (e) => e.code,
        ),
      ),
    );
  });
  assert.deepEqual(bad, ["bad_request", "bad_request", "bad_request"]);
});
