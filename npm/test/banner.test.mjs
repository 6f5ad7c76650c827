// The URL onBanner hands over: the first http(s) URL of a banner (check mode's "Visit: URL").
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { transformSync } from 'esbuild';

const src = readFileSync(new URL('../src/banner.ts', import.meta.url), 'utf8');
const { code } = transformSync(src, { loader: 'ts', format: 'esm' });
const { bannerURL } = await import(`data:text/javascript,${encodeURIComponent(code)}`);

test('bannerURL finds the check-mode link', () => {
  const url = 'https://login.example.com/check/0123abcd';
  assert.equal(bannerURL(`tsconnect: this login needs you to re-authenticate as alice. Visit: ${url}\n`), url);
  assert.equal(bannerURL(`Visit: ${url}.`), url, 'trailing punctuation is not part of it');
  assert.equal(bannerURL(`(see ${url})`), url);
  assert.equal(bannerURL(`"http://127.0.0.1:8080/check/x" then https://other.example/`), 'http://127.0.0.1:8080/check/x', 'the first one');
});

test('bannerURL ignores what is not an http(s) URL', () => {
  assert.equal(bannerURL('Welcome to web-1. Authorized use only.'), undefined);
  assert.equal(bannerURL('javascript:alert(1) ftp://x.example/ file:///etc/passwd'), undefined);
  assert.equal(bannerURL('http:// nothing'), undefined);
});
