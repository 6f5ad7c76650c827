// The files of the consumer project npm-consumer.test.mjs creates: a page that embeds
// @tsconnect/connect the way its README says, driven by the test through buttons and
// read through the DOM (it puts nothing on window either).

/** The package versions the consumer installs beside the tarball. */
export const deps = {
  "@xterm/xterm": "6.0.0",
  "@xterm/addon-fit": "0.11.0",
  "@xterm/addon-unicode11": "0.9.0",
  "@xterm/addon-web-links": "0.12.0",
  "@xterm/addon-webgl": "0.19.0",
  "@xterm/addon-search": "0.16.0",
  esbuild: "0.28.2",
  vite: "7",
  typescript: "5.9.3",
};

/** Files by path, relative to the consumer project's root. */
export const files = {
  "package.json": JSON.stringify({ name: "tsconnect-consumer", private: true, type: "module" }, null, 2) + "\n",

  // The shipped .d.ts files as a TypeScript consumer sees them (tsc --noEmit, strict).
  "tsconfig.json":
    JSON.stringify(
      {
        compilerOptions: {
          target: "ES2022",
          module: "ESNext",
          moduleResolution: "bundler",
          lib: ["ES2022", "DOM", "DOM.Iterable"],
          types: [],
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          exactOptionalPropertyTypes: true,
        },
        files: ["src/wasm.d.ts", "src/check.ts"],
      },
      null,
      2,
    ) + "\n",
  // What a file loader (esbuild --loader:.wasm=file) gives for the .wasm subpath.
  "src/wasm.d.ts": `declare module '@tsconnect/connect/tsconnect.wasm' { const url: string; export default url; }\n`,
  "src/check.ts": `import { createIPN, isIPNError, type IPN, type IPNState, type NetMap } from '@tsconnect/connect';
import { openTerminal, type TerminalResult, type TerminalSession } from '@tsconnect/connect/terminal';
import wasm from '@tsconnect/connect/tsconnect.wasm';

export async function uses(el: HTMLElement, child: Window): Promise<void> {
  const ipn: IPN = await createIPN({ controlURL: 'https://c.example', authKey: 'k', hostname: 'h', wasmURL: new URL(wasm, import.meta.url), logger: (l: string) => void l });
  ipn.run({ notifyState: (s: IPNState) => void s, notifyNetMap: (m: NetMap) => void m.peers[0]?.name });
  await ipn.login();
  // Interactive login: no authKey, the sign-in URL comes through notifyBrowseToURL.
  const i: IPN = await createIPN({ controlURL: 'https://c.example' });
  i.run({ notifyBrowseToURL: (url: string) => void new URL(url).origin, notifyState: (s: IPNState) => void (s === 'needs-login') });
  await i.login();
  const s = ipn.ssh('host', 'user', {
    rows: 24, cols: 80,
    onData: (d: Uint8Array) => void d,
    onBanner: (text: string, url?: string) => void [text, url],
    onDone: (code: number, err) => { if (err) { const c: string = err.code; void [code, c]; } },
  });
  s.write('ls\\n'); s.write(new Uint8Array([3])); s.resize(30, 100); s.close();
  const a: TerminalSession = openTerminal(ipn, 'user@host', { container: el, copyOnSelect: false });
  const b = openTerminal(ipn, { host: 'host', user: 'user' }, { childWindow: child, stylesheet: '/xterm.css', onLink: (uri: string) => void uri });
  const r: TerminalResult = await b.done;
  a.terminal.write('x'); a.dispose();
  void r.error?.code;
  // @ts-expect-error container or childWindow is required
  openTerminal(ipn, 'user@host', {});
  // @ts-expect-error stylesheet goes with childWindow only
  openTerminal(ipn, 'user@host', { container: el, stylesheet: '/xterm.css' });
  // @ts-expect-error write takes bytes or a string
  s.write(42);
  try { await ipn.logout(); } catch (e) { if (isIPNError(e)) { const c: string = e.code; void c; } }
}
`,

  // Evaluated before any other module of the bundle (first import), so it sees the page's
  // global object before our package and xterm were loaded.
  "src/snapshot.js": `export const before = new Set(Object.getOwnPropertyNames(window));\n`,

  "src/app.js": `import { before } from './snapshot.js';
import './app.css';
import { createIPN } from '@tsconnect/connect';
import { openTerminal } from '@tsconnect/connect/terminal';

const $ = (id) => document.getElementById(id);
const say = (line) => { $('status').textContent += line + '\\n'; };

export async function main(wasmURL) {
  const cfg = await (await fetch('./config.json')).json();
  const target = cfg.user + '@' + cfg.host;
  const extra = wasmURL ? { wasmURL } : {};
  if (new URLSearchParams(location.search).has('interactive')) return interactive(cfg, target, extra);

  // Two nodes in one page: each its own Worker and Go runtime.
  const ipns = await Promise.all(['consumer-a', 'consumer-b'].map(async (hostname) => {
    const ipn = await createIPN({ controlURL: cfg.controlURL, authKey: cfg.authKey, hostname, ...extra });
    ipn.run({ notifyState: (s) => say(hostname + ': ' + s) });
    await ipn.login();
    return ipn;
  }));
  ipns.forEach((ipn, i) => {
    const t = openTerminal(ipn, target, { container: $('t' + (i + 1)) });
    t.done.then((r) => say('t' + (i + 1) + ' done ' + r.exitCode + ' ' + (r.error ? r.error.code : '')));
  });

  // A terminal in a child window: window.open in the click handler, the page draws into it.
  $('popup').addEventListener('click', () => {
    const w = window.open('./term.html', '', 'popup,width=720,height=420');
    if (!w) { say('popup blocked'); return; }
    const t = openTerminal(ipns[0], target, {
      childWindow: w,
      onConnected: () => say('popup connected'),
    });
    t.done.then((r) => say('popup done ' + r.exitCode + ' ' + (r.error ? r.error.code : '')));
  });

  // Errors carry a code a program can switch on.
  $('badkey').addEventListener('click', async () => {
    try {
      const ipn = await createIPN({ controlURL: cfg.controlURL, authKey: 'tskey-not-a-key', hostname: 'bad', ...extra });
      ipn.run({});
      await ipn.login();
      say('badkey: no error');
    } catch (e) {
      say('badkey: ' + (e instanceof Error) + ' ' + e.code);
    }
  });

  $('globals').addEventListener('click', () => {
    $('globals-out').textContent = JSON.stringify(Object.getOwnPropertyNames(window).filter((n) => !before.has(n)));
  });
  say('ready');
}

// Interactive login, as the README shows it: no authKey; the sign-in URL on control becomes
// a link; login() resolves once the user has signed in there, then a shell.
async function interactive(cfg, target, extra) {
  const ipn = await createIPN({ controlURL: cfg.controlURL, hostname: 'consumer-login', ...extra });
  let owner = '';
  ipn.run({
    notifyState: (s) => say('login-state: ' + s),
    notifyBrowseToURL: (url) => {
      say('login-url: ' + url);
      if (new URL(url).origin !== new URL(cfg.controlURL).origin) return;
      const a = $('signin');
      a.href = url;
      a.hidden = false;
    },
    notifyNetMap: (m) => { owner = (m.users.find((u) => u.id === m.self.user) || {}).loginName || ''; },
  });
  say('ready');
  try {
    await ipn.login();
  } catch (e) {
    say('login: failed ' + e.code + ' ' + e.message);
    return;
  } finally {
    $('signin').hidden = true;
  }
  say('login: ' + ipn.state + ' as ' + owner);
  const t = openTerminal(ipn, target, { container: $('t1') });
  t.done.then((r) => say('t1 done ' + r.exitCode + ' ' + (r.error ? r.error.code : '')));
}
`,

  "src/app.css": `body { font-family: sans-serif; margin: 8px; }
.term { width: 640px; height: 240px; margin: 4px 0; }
`,

  // esbuild: the .wasm comes from the package's exports map, copied by the file loader; its
  // URL is passed as wasmURL.
  "src/main-esbuild.js": `import { main } from './app.js';
import '@xterm/xterm/css/xterm.css';
import wasm from '@tsconnect/connect/tsconnect.wasm';
main(new URL(wasm, import.meta.url));
`,

  // Vite: the default, new URL('./tsconnect.wasm', import.meta.url) inside the package; xterm's
  // CSS adopted as a constructed sheet (no <style>, no file), which openTerminal copies into the child.
  "src/main-vite.js": `import { main } from './app.js';
import xtermCSS from '@xterm/xterm/css/xterm.css?inline';
const sheet = new CSSStyleSheet();
sheet.replaceSync(xtermCSS);
document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
main();
`,

  "index.html": `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>tsconnect consumer</title>
<!-- esbuild:css -->
<script type="module" src="/src/main-vite.js"></script>
</head>
<body>
<button id="popup">Open in a window</button>
<button id="badkey">Bad key</button>
<button id="globals">Globals</button>
<a id="signin" target="_blank" rel="noopener" hidden>Sign in to connect this tab</a>
<pre id="globals-out"></pre>
<div id="t1" class="term"></div>
<div id="t2" class="term"></div>
<pre id="status"></pre>
</body>
</html>
`,

  // The child page: no scripts, no styles of its own (openTerminal brings xterm's).
  "public/term.html": `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>terminal</title></head>
<body></body>
</html>
`,
  "public/linked.html": `<!doctype html><title>linked</title><p>a link from the terminal</p>\n`,
};

/** index.html for the esbuild build: its own script and the CSS esbuild extracted. */
export function esbuildIndex(html) {
  return html
    .replace("<!-- esbuild:css -->", '<link rel="stylesheet" href="./main-esbuild.css">')
    .replace('<script type="module" src="/src/main-vite.js"></script>', '<script type="module" src="./main-esbuild.js"></script>');
}
