// Click-to-prompt in Chromium against `tsconnect demo` on loopback: one cold load (wasm
// compiled), then 5 loads with the wasm in the HTTP cache; prints each and the median.
import { startDemo, launch, waitTerminal } from './demo.js';

const demo = await startDemo({ grace: '5s' });
const browser = await launch();
const context = await browser.newContext();
const times = [];
try {
  for (let i = 0; i < 6; i++) {
    const page = await context.newPage();
    const t0 = Date.now();
    await page.goto(demo.url);
    await waitTerminal(page, /[$#] *$/m);
    const ms = Date.now() - t0;
    console.log(`${i === 0 ? 'cold  ' : 'cached'} load ${i}: ${ms} ms to the shell prompt`);
    if (i > 0) times.push(ms);
    await page.close();
  }
  times.sort((a, b) => a - b);
  console.log(`median click-to-prompt, wasm cached: ${times[Math.floor(times.length / 2)]} ms (budget 1000 ms)`);
} finally {
  await browser.close();
  await demo.stop();
}
