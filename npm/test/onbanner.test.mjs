// The banner-URL rule at the package's surface: the built createIPN, its Worker replaced by a
// stand-in that speaks the page↔Worker protocol (npm/src/protocol.ts), hands a session's onBanner
// the banner text always and url only for control's check page. Run after `npm run build`.
import assert from "node:assert/strict";
import { test } from "node:test";

/** A Worker stand-in: answers init with ready and keeps what the page posts. */
class FakeWorker {
  /** @type {FakeWorker[]} */
  static all = [];
  /** @type {any[]} */
  posted = [];
  /** @type {((e: { data: unknown }) => void) | null} */
  onmessage = null;
  onerror = null;
  constructor() {
    FakeWorker.all.push(this);
  }
  /** @param {any} msg */
  postMessage(msg) {
    this.posted.push(msg);
    if (msg.t === "init") queueMicrotask(() => this.send({ t: "ready" }));
  }
  /** @param {unknown} data */
  send(data) {
    this.onmessage?.({ data });
  }
  terminate() {}
}

test("onBanner gets the text of every banner and url only for control's /check/ID", async () => {
  Object.assign(globalThis, { Worker: FakeWorker });
  const { createIPN } = await import("@tsconnect/connect");
  const controlURL = "http://127.0.0.1:8080";
  // The smallest WebAssembly module: createIPN compiles it and hands it to the (fake) Worker.
  const ipn = await createIPN({ controlURL, authKey: "k", wasmURL: "data:application/wasm;base64,AGFzbQEAAAA=" });
  const w = FakeWorker.all.at(-1);
  assert.ok(w);
  /** @type {[string, string | undefined][]} */
  const got = [];
  ipn.ssh("web-1", "alice", { onData() {}, onBanner: (text, url) => got.push([text, url]) });
  const sid = w.posted.find((m) => m.t === "ssh")?.sid;
  assert.equal(typeof sid, "number");
  const banners = [
    "Please confirm at http://evil.example/check/abc then http://127.0.0.1:8080/check/0123abcd.\n",
    "Welcome to web-1. Docs: https://wiki.example/ssh\n",
    "Sign in: http://127.0.0.1:8080/login/0123\n",
    "Other origin: http://127.0.0.1:8081/check/0123\n",
  ];
  for (const text of banners) w.send({ t: "banner", sid, text });
  assert.deepEqual(got, [
    [banners[0], "http://127.0.0.1:8080/check/0123abcd"],
    [banners[1], undefined],
    [banners[2], undefined],
    [banners[3], undefined],
  ]);
  ipn.dispose();
});
