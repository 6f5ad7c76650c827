// Resume of an open browser SSH session (Chromium; the wasm node in the console's Worker)
// after relay outages of 1, 4, 10 and 30 s in a row, for the standalone relay (`tsconnect
// derp`, SIGKILLed and restarted on the same address and key) and for control's embedded
// relay (control stopped and started again): prints how long after the relay answers again
// the session's output resumes (issue 14; goal under 2 s). `make bench` runs it.
import { launch } from "./demo.js";
import { outages, outageNet, openTicker, outageResume } from "./outage.mjs";

const browser = await launch();
try {
  for (const kind of /** @type {const} */ (["standalone", "embedded"])) {
    const o = await outageNet(kind);
    try {
      const tk = await openTicker(browser, o.net);
      const got = [];
      for (const ms of outages) {
        const d = await outageResume(o, tk, ms, 60_000);
        got.push((d / 1000).toFixed(2));
        console.log(`browser ${kind} relay: outage ${ms / 1000} s: output resumed ${d} ms after the relay came back`);
      }
      console.log(
        `browser ${kind} relay: resume after outages of ${outages.map((m) => m / 1000).join(", ")} s: ${got.join(", ")} s (goal < 2 s)`,
      );
      await tk.context.close();
    } finally {
      await o.net.stop();
    }
  }
} finally {
  await browser.close();
}
