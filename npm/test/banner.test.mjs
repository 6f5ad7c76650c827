// The URL onBanner hands over: the first http(s) URL of a banner (check mode's "Visit: URL").
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { transformSync } from "esbuild";

const src = readFileSync(new URL("../src/banner.ts", import.meta.url), "utf8");
const { code } = transformSync(src, { loader: "ts", format: "esm" });
const { bannerURL } = await import(`data:text/javascript,${encodeURIComponent(code)}`);

test("bannerURL finds the check-mode link", () => {
  const url = "https://login.example.com/check/0123abcd";
  assert.equal(bannerURL(`tsconnect: this login needs you to re-authenticate as alice. Visit: ${url}\n`), url);
  assert.equal(bannerURL(`Visit: ${url}.`), url, "trailing punctuation is not part of it");
  assert.equal(bannerURL(`(see ${url})`), url);
  assert.equal(bannerURL(`"http://127.0.0.1:8080/check/x" then https://other.example/`), "http://127.0.0.1:8080/check/x", "the first one");
});

test("bannerURL ignores what is not an http(s) URL", () => {
  assert.equal(bannerURL("Welcome to web-1. Authorized use only."), undefined);
  assert.equal(bannerURL("javascript:alert(1) ftp://x.example/ file:///etc/passwd"), undefined);
  assert.equal(bannerURL("http:// nothing"), undefined);
});

const { controlPageURL } = await import(`data:text/javascript,${encodeURIComponent(code)}`);

test("a banner link opens only at control's own check and login pages", () => {
  const control = "http://127.0.0.1:8080";
  assert.equal(controlPageURL("http://127.0.0.1:8080/check/abc", control), "http://127.0.0.1:8080/check/abc");
  assert.equal(controlPageURL("http://127.0.0.1:8080/login/abc", control + "/"), "http://127.0.0.1:8080/login/abc");
  for (const hostile of [
    "https://evil.example/check/abc", // another site
    "http://127.0.0.1:8081/check/abc", // another port on the same host
    "https://127.0.0.1:8080/check/abc", // another scheme
    "http://127.0.0.1:8080/admin/#/keys", // control, but not a check or login page
    "http://127.0.0.1:8080/check/", // no ID
    "http://127.0.0.1:8080/checkout/x",
    "http://127.0.0.1:8080/check/../admin/", // normalizes to /admin/
    "http://evil@127.0.0.1:8080/check/abc", // credentials in the URL
    "javascript:alert(1)//127.0.0.1:8080/check/abc",
    "not a url",
    undefined,
  ]) {
    assert.equal(controlPageURL(hostile, control), undefined, `${hostile} must not open`);
  }
  assert.equal(controlPageURL("http://127.0.0.1:8080/check/abc", "not a url"), undefined);
});
