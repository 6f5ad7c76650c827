// The Recordings page's HTTP/1.1 client over one overlay stream (web/src/console/overlayhttp.ts),
// here over a loopback TCP connection to Node's own HTTP server: a chunked body streamed as it
// is written, a Content-Length body, the status and headers, a server that is not HTTP.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { createServer as createTCPServer, connect } from "node:net";
import { test } from "node:test";
import { Readable } from "node:stream";
import { transformSync } from "esbuild";

const src = readFileSync(new URL("../../web/src/console/overlayhttp.ts", import.meta.url), "utf8");
const { code } = transformSync(src, { loader: "ts", format: "esm" });
/** @type {typeof import("../../web/src/console/overlayhttp.ts")} */
const { overlayGet, bodyText } = await import(`data:text/javascript,${encodeURIComponent(code)}`);

/** A Dial over loopback TCP. @param {string} addr */
const dial = (addr) =>
  new Promise((resolve, reject) => {
    const [host, port] = addr.split(":");
    const sock = connect(Number(port), host, () =>
      resolve({
        readable: /** @type {ReadableStream<Uint8Array>} */ (Readable.toWeb(sock)),
        writable: new WritableStream({ write: (b) => new Promise((r) => sock.write(b, () => r(undefined))) }),
        close: () => sock.destroy(),
      }),
    );
    sock.on("error", reject);
  });

/** @param {import("node:http").RequestListener | import("node:net").Server} h */
async function serve(h) {
  const srv = typeof h === "function" ? createServer(h) : h;
  const conns = new Set();
  srv.on("connection", (c) => conns.add(c));
  await new Promise((r) => srv.listen(0, "127.0.0.1", () => r(undefined)));
  const a = /** @type {import("node:net").AddressInfo} */ (srv.address());
  const close = () => new Promise((r) => (conns.forEach((c) => c.destroy()), srv.close(r)));
  return { addr: `127.0.0.1:${a.port}`, close };
}

test("a chunked answer streams each piece as it is written, then ends", async () => {
  /** @type {(v?: unknown) => void} */
  let release = () => {};
  const gate = new Promise((r) => (release = r));
  const s = await serve(async (req, res) => {
    assert.equal(req.url, "/v1/recordings/x/cast?follow=1");
    res.writeHead(200, { "Content-Type": "application/x-asciicast", "Tsconnect-Live": "1" });
    res.write('{"version":2}\n');
    await gate;
    res.end('[1, "o", "later"]\n');
  });
  try {
    const r = await overlayGet(dial, s.addr, "/v1/recordings/x/cast?follow=1");
    assert.equal(r.status, 200);
    assert.equal(r.headers.get("tsconnect-live"), "1");
    const reader = r.body.getReader();
    const first = await reader.read();
    assert.equal(new TextDecoder().decode(first.value), '{"version":2}\n', "the first piece arrives before the answer ends");
    release();
    let rest = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      rest += new TextDecoder().decode(value);
    }
    assert.equal(rest, '[1, "o", "later"]\n');
  } finally {
    await s.close();
  }
});

test("a Content-Length answer and an error status", async () => {
  const s = await serve((req, res) => {
    const body = JSON.stringify({ error: "may not view recordings: bob is a member" });
    res.writeHead(403, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) });
    res.end(body);
  });
  try {
    const r = await overlayGet(dial, s.addr, "/v1/recordings");
    assert.equal(r.status, 403);
    assert.deepEqual(JSON.parse(await bodyText(r)), { error: "may not view recordings: bob is a member" });
  } finally {
    await s.close();
  }
});

test("a server that does not speak HTTP is refused, naming it", async () => {
  const tcp = createTCPServer((c) => {
    c.on("error", () => {});
    c.write("SSH-2.0-OpenSSH_9.6\r\n");
  });
  const s = await serve(tcp);
  try {
    await assert.rejects(overlayGet(dial, s.addr, "/v1/recordings"), /not HTTP\/1\.1/);
  } finally {
    await s.close();
  }
});
