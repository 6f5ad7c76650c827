// An open browser SSH session (the wasm node in the console's Worker) resumes after its relay
// is down for 4 s: the standalone `tsconnect derp` and control's embedded relay (issue 14;
// the goal is 2 s, e2e/browser/outage-bench.mjs prints it; the limit here is 10 s).
import { test, before, after } from "node:test";
import { launch, waitTerminal } from "./demo.js";
import { outageNet, openTicker, outageResume } from "./outage.mjs";

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

for (const kind of /** @type {const} */ (["standalone", "embedded"])) {
  test(`open browser session resumes after a 4 s outage of the ${kind} relay`, async (t) => {
    const o = await outageNet(kind);
    t.after(() => o.net.stop());
    const tk = await openTicker(browser, o.net);
    t.after(() => tk.context.close());
    const ms = await outageResume(o, tk, 4000, 10_000);
    t.diagnostic(`output resumed ${ms} ms after the ${kind} relay came back`);
    // The session still takes input.
    await tk.child.keyboard.press("Control+C");
    await tk.child.keyboard.type("echo after-$((40+2))\n");
    await waitTerminal(tk.child, /^after-42\s*$/m);
  });
}
