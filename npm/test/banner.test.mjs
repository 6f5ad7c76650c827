// The banner-URL rule (npm/src/banner.ts, documented at SSHOptions.onBanner): only control's own
// check page, /check/ID on its origin, is handed to the page as url; every other link stays text.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { transformSync } from "esbuild";

const src = readFileSync(new URL("../src/banner.ts", import.meta.url), "utf8");
const { code } = transformSync(src, { loader: "ts", format: "esm" });
/** @type {typeof import("../src/banner.ts")} */
const { bannerLinks, checkPageURL, bannerCheckURL } = await import(`data:text/javascript,${encodeURIComponent(code)}`);

const control = "http://127.0.0.1:8080";

test("bannerLinks finds the http(s) URLs of a banner, in order", () => {
  const url = "https://login.example.com/check/0123abcd";
  assert.deepEqual(bannerLinks(`tsconnect: this login needs you to re-authenticate as alice. Visit: ${url}\n`), [url]);
  assert.deepEqual(bannerLinks(`Visit: ${url}.`), [url], "trailing punctuation is not part of it");
  assert.deepEqual(bannerLinks(`(see ${url})`), [url]);
  assert.deepEqual(bannerLinks(`"http://127.0.0.1:8080/check/x" then https://other.example/`), [
    "http://127.0.0.1:8080/check/x",
    "https://other.example/",
  ]);
});

test("bannerLinks ignores what is not an http(s) URL", () => {
  assert.deepEqual(bannerLinks("Welcome to web-1. Authorized use only."), []);
  assert.deepEqual(bannerLinks("javascript:alert(1) ftp://x.example/ file:///etc/passwd"), []);
  assert.deepEqual(bannerLinks("http:// nothing"), []);
});

test("checkPageURL accepts only control's own check page", () => {
  assert.equal(checkPageURL("http://127.0.0.1:8080/check/abc", control), "http://127.0.0.1:8080/check/abc");
  assert.equal(checkPageURL("http://127.0.0.1:8080/check/abc", control + "/"), "http://127.0.0.1:8080/check/abc");
  assert.equal(checkPageURL("HTTP://127.0.0.1:8080/check/0123-ab_c", control), "http://127.0.0.1:8080/check/0123-ab_c", "normalized");
  assert.equal(
    checkPageURL("https://x.example/tsc/check/abc", "https://x.example/tsc/"),
    "https://x.example/tsc/check/abc",
    "under control's path",
  );
  for (const hostile of [
    "https://evil.example/check/abc", // another site
    "http://127.0.0.1:8080.evil.example/check/abc", // a host that starts like control's
    "http://127.0.0.1:8081/check/abc", // another port on the same host
    "https://127.0.0.1:8080/check/abc", // another scheme
    "http://127.0.0.1:8080/admin/#/keys", // control, but not a check page
    "http://127.0.0.1:8080/login/abc", // a node's login: approving it would add someone's machine
    "http://127.0.0.1:8080/check/", // no ID
    "http://127.0.0.1:8080/check/abc/sso", // not the page itself
    "http://127.0.0.1:8080/checkout/x",
    "http://127.0.0.1:8080/check/../admin/", // normalizes to /admin/
    "http://127.0.0.1:8080/check/abc?next=https://evil.example/", // a query
    "http://127.0.0.1:8080/check/abc#x", // a fragment
    "http://evil@127.0.0.1:8080/check/abc", // credentials in the URL
    "javascript:alert(1)//127.0.0.1:8080/check/abc",
    "not a url",
    undefined,
  ]) {
    assert.equal(checkPageURL(hostile, control), undefined, `${hostile} must not be acted on`);
  }
  assert.equal(checkPageURL("https://x.example/check/abc", "https://x.example/tsc"), undefined, "outside control's path");
  assert.equal(checkPageURL("http://127.0.0.1:8080/check/abc", "not a url"), undefined);
});

test("bannerCheckURL hands over the first check-page link of a banner, nothing else", () => {
  const check = `${control}/check/0123abcd`;
  const banner = (/** @type {string} */ url) => `tsconnect: this login needs you to re-authenticate as bob@example.com. Visit: ${url}\r\n`;
  assert.equal(bannerCheckURL(banner(check), control), check);
  assert.equal(bannerCheckURL(`first https://other.example/x then ${check}`, control), check, "skips links that are not acted on");
  assert.equal(bannerCheckURL(`Go to (${check}).`, control), check);
  assert.equal(bannerCheckURL(`${check} or ${control}/check/ffff`, control), check, "the first");
  assert.equal(
    bannerCheckURL(banner("https://login.example.com/check/0123"), "https://LOGIN.example.com"),
    "https://login.example.com/check/0123",
  );
  for (const text of [
    banner("https://login.example.com.evil.net/check/0123"), // another origin
    banner("http://login.example.com/check/0123"), // a downgrade
    banner(`${control}/login/0123`),
    "Welcome. Docs: https://wiki.example/ssh",
    "no link here",
  ]) {
    assert.equal(bannerCheckURL(text, text.includes("login.example") ? "https://login.example.com" : control), undefined, text);
  }
});
