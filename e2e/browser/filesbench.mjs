// File transfer of 1 GiB each way in Chromium, streamed (issue 19, part 3): a benchmark, not a
// test. On the demo page against `tsconnect demo` (its agent is this machine, as this user):
// - up: a generated file on disk given to the page's Upload input (Playwright setInputFiles: the
//   browser reads it from disk as it goes), the target's sha256 checked against the source's;
// - down: the same file back through the page's Files panel by its typed path, saved the way
//   the UI saves (showSaveFilePicker, here onto the origin-private file system), the saved
//   file's sha256 computed in the page while it is read back as a stream.
// Prints MB/s each way and the tab's memory (page heap + Worker heap + wasm memory through the
// DevTools protocol, as termbench reads it): the heaps sampled every 2 s during each transfer,
// max, the wasm memories (which only grow) after it; total is at most their sum.
// FILESBENCH_MIB sets the size (default 1024).
import { createHash } from "node:crypto";
import { createReadStream, mkdtempSync, openSync, writeSync, closeSync, rmSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { basename, join } from "node:path";
import { startDemo, launch, waitTerminal } from "./demo.js";
import { saveToOPFS } from "./files-helpers.mjs";
import { memory } from "./termprobe.mjs";

const MiB = 1 << 20;
const sizeMiB = Number(process.env.FILESBENCH_MIB || 1024);
const size = sizeMiB * MiB;
const f1 = (x) => x.toFixed(1);

/** sha256 (hex) of a file on disk, streamed. @param {string} path */
function fileSha(path) {
  return new Promise((resolve, reject) => {
    const h = createHash("sha256");
    createReadStream(path, { highWaterMark: 4 * MiB })
      .on("data", (d) => h.update(d))
      .on("end", () => resolve(h.digest("hex")))
      .on("error", reject);
  });
}

/** Writes size bytes to path: a random MiB repeated, each copy's first 8 bytes its index (no two MiB alike). */
function generate(path) {
  const block = Buffer.alloc(MiB);
  for (let i = 0; i < MiB; i += 65536) block.set(createHash("sha512").update(String(i)).digest().subarray(0, 64), i);
  for (let i = 0; i < MiB; i++) block[i] ^= (i * 2654435761) >>> 24;
  const fd = openSync(path, "w");
  for (let m = 0; m < sizeMiB; m++) {
    block.writeBigUInt64BE(BigInt(m), 0);
    writeSync(fd, block);
  }
  closeSync(fd);
}

/**
 * Waits for the transfer row of name (the nth such row) to end, sampling the tab's memory
 * every 2 s meanwhile; returns seconds taken (from t0), its state and the largest sample.
 */
async function follow(page, name, nth, t0) {
  const row = page.locator(`#transfers li[data-name="${name}"]`).nth(nth);
  const max = { total: 0, page: 0, workerHeap: 0, wasm: 0, samples: 0, missed: 0 };
  for (;;) {
    const state = await row.getAttribute("data-state").catch(() => null);
    if (state && state !== "running" && state !== "interrupted") {
      const secs = (Date.now() - t0) / 1000;
      // The wasm memories only grow: their size now is their largest during the transfer.
      const m = await memory(page);
      max.wasm = m.wasm;
      max.total = Math.max(max.total, m.total, max.page + max.workerHeap + m.wasm);
      return { secs, state, text: (await row.textContent()) ?? "", max };
    }
    const tm = Date.now();
    // A sample that the DevTools protocol does not answer within 10 s is skipped (and counted).
    const m = await Promise.race([memory(page, { wasm: false }), new Promise((r) => setTimeout(() => r(null), 10_000))]);
    if (process.env.FILESBENCH_DEBUG) console.log(`memory sample in ${Date.now() - tm} ms: ${m ? memLine(m) : "no answer"}; row ${state}`);
    if (!m) {
      max.missed++;
      continue;
    }
    max.samples++;
    for (const k of /** @type {const} */ (["total", "page", "workerHeap", "wasm"])) max[k] = Math.max(max[k], m[k]);
    await new Promise((r) => setTimeout(r, 2000));
  }
}

const memLine = (m) =>
  `max ${f1(m.total / MiB)} MiB (page ${f1(m.page / MiB)}, Worker heap ${f1(m.workerHeap / MiB)}, wasm memory ${f1(m.wasm / MiB)}; page and Worker each their own max${m.samples !== undefined ? `; ${m.samples} samples, ${m.missed} unanswered` : ""})`;

/** In the page: the sha256 (hex) of OPFS file name, read as a stream (a SHA-256 of our own: WebCrypto has no streaming digest). */
function opfsSha(page, name) {
  return page.evaluate(async (name) => {
    const primes = [];
    for (let n = 2; primes.length < 64; n++) if (primes.every((p) => n % p)) primes.push(n);
    const frac = (/** @type {number} */ x) => ((x - Math.floor(x)) * 2 ** 32) >>> 0;
    const K = Uint32Array.from(primes, (p) => frac(Math.cbrt(p)));
    const W = new Uint32Array(64);
    const rotr = (/** @type {number} */ x, /** @type {number} */ n) => (x >>> n) | (x << (32 - n));
    const digest = () => {
      const H = Uint32Array.from(primes.slice(0, 8), (p) => frac(Math.sqrt(p)));
      const carry = new Uint8Array(64);
      let have = 0;
      let total = 0;
      const block = (/** @type {DataView} */ v, /** @type {number} */ off) => {
        for (let i = 0; i < 16; i++) W[i] = v.getUint32(off + 4 * i);
        for (let i = 16; i < 64; i++) {
          const a = W[i - 15];
          const b = W[i - 2];
          W[i] = (W[i - 16] + (rotr(a, 7) ^ rotr(a, 18) ^ (a >>> 3)) + W[i - 7] + (rotr(b, 17) ^ rotr(b, 19) ^ (b >>> 10))) | 0;
        }
        let [a, b, c, d, e, f, g, h] = H;
        for (let i = 0; i < 64; i++) {
          const t1 = (h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + W[i]) | 0;
          const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) | 0;
          h = g;
          g = f;
          f = e;
          e = (d + t1) | 0;
          d = c;
          c = b;
          b = a;
          a = (t1 + t2) | 0;
        }
        H[0] += a;
        H[1] += b;
        H[2] += c;
        H[3] += d;
        H[4] += e;
        H[5] += f;
        H[6] += g;
        H[7] += h;
      };
      const cv = new DataView(carry.buffer);
      return {
        update(/** @type {Uint8Array} */ p) {
          total += p.length;
          let at = 0;
          if (have > 0) {
            const n = Math.min(64 - have, p.length);
            carry.set(p.subarray(0, n), have);
            have += n;
            at = n;
            if (have < 64) return;
            block(cv, 0);
            have = 0;
          }
          const v = new DataView(p.buffer, p.byteOffset, p.byteLength);
          for (; at + 64 <= p.length; at += 64) block(v, at);
          carry.set(p.subarray(at), 0);
          have = p.length - at;
        },
        hex() {
          const bits = total * 8;
          const pad = new Uint8Array((have < 56 ? 56 : 120) - have + 8);
          pad[0] = 0x80;
          const pv = new DataView(pad.buffer);
          pv.setUint32(pad.length - 8, Math.floor(bits / 2 ** 32));
          pv.setUint32(pad.length - 4, bits >>> 0);
          this.update(pad);
          return [...H].map((x) => x.toString(16).padStart(8, "0")).join("");
        },
      };
    };
    // Checked against WebCrypto first, on an odd length.
    const probe = new Uint8Array(1_000_003);
    for (let i = 0; i < probe.length; i += 65536) crypto.getRandomValues(probe.subarray(i, i + 65536));
    const want = [...new Uint8Array(await crypto.subtle.digest("SHA-256", probe))].map((b) => b.toString(16).padStart(2, "0")).join("");
    const mine = digest();
    mine.update(probe.subarray(0, 77));
    mine.update(probe.subarray(77));
    if (mine.hex() !== want) throw new Error("the page's SHA-256 does not match WebCrypto's");
    const f = await (await (await navigator.storage.getDirectory()).getFileHandle(name)).getFile();
    const h = digest();
    const reader = f.stream().getReader();
    for (;;) {
      const r = await reader.read();
      if (r.done) break;
      h.update(r.value);
    }
    return { size: f.size, sum: h.hex() };
  }, name);
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), "tsconnect-filesbench-"));
  const src = join(dir, `tsconnect-filesbench-${process.pid}.bin`);
  const name = basename(src);
  const target = join(homedir(), name);
  const demo = await startDemo({ grace: "5s" });
  const browser = await launch();
  try {
    generate(src);
    const want = await fileSha(src);
    const page = await browser.newPage();
    page.on("crash", () => console.log("the page crashed"));
    page.on("pageerror", (e) => console.log(`page error: ${e}`));
    page.on("console", (m) => process.env.FILESBENCH_DEBUG && m.type() !== "debug" && console.log(`console: ${m.text().slice(0, 300)}`));
    await page.goto(demo.url);
    await waitTerminal(page, /[$#] *$/m, 60_000);
    console.log(`memory before: ${memLine(await memory(page))}`);

    let t0 = Date.now();
    await page.locator("input[type=file]").setInputFiles(src);
    const up = await follow(page, name, 0, t0);
    if (up.state !== "done") throw new Error(`the upload ended ${up.state}: ${up.text}`);
    const upSum = await fileSha(target);
    console.log(
      `files up ${sizeMiB} MiB: ${f1(size / 1e6 / up.secs)} MB/s (${f1(size / MiB / up.secs)} MiB/s, ${f1(up.secs)} s); sha256 on the target ${upSum === want ? "matches" : "DIFFERS"}; memory during it ${memLine(up.max)}`,
    );

    await saveToOPFS(page);
    await page.locator("#files-button").click();
    await page.locator("#download-path").fill(target);
    t0 = Date.now();
    await page.locator("#download-form button").click();
    const down = await follow(page, name, 1, t0);
    if (down.state !== "done") throw new Error(`the download ended ${down.state}: ${down.text}`);
    const got = await opfsSha(page, name);
    console.log(
      `files down ${sizeMiB} MiB: ${f1(size / 1e6 / down.secs)} MB/s (${f1(size / MiB / down.secs)} MiB/s, ${f1(down.secs)} s); sha256 of the saved file ${got.size === size && got.sum === want ? "matches" : `DIFFERS (${got.size} bytes)`}; memory during it ${memLine(down.max)}`,
    );
    if (upSum !== want || got.sum !== want) process.exitCode = 1;
  } finally {
    await browser.close();
    await demo.stop();
    rmSync(dir, { recursive: true, force: true });
    rmSync(target, { force: true });
  }
}

await main();
