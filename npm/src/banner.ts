// The one banner-URL rule: which link of an SSH authentication banner a page is handed to act on
// (documented at SSHOptions.onBanner in npm/types/index.d.ts).

/** The http(s) URLs in a banner's text, in order, without trailing punctuation. */
export function bannerLinks(text: string): string[] {
  const links: string[] = [];
  for (const m of text.matchAll(/https?:\/\/[^\s"'<>]+/gi)) {
    const w = m[0].replace(/[.,;:!?)]+$/, "");
    try {
      const u = new URL(w);
      if (u.protocol === "http:" || u.protocol === "https:") links.push(w);
    } catch {
      // not a URL after all
    }
  }
  return links;
}

/** A check ID as control writes it (/check/ID): one path segment of letters, digits, - and _. */
const checkID = /^[A-Za-z0-9_-]+$/;

/**
 * The rule for one URL: it is acted on only if it is control's check page, `/check/ID` under
 * controlURL's path on controlURL's origin (same scheme, host and port), with no credentials,
 * query or fragment. Parsed as the browser parses it (WHATWG URL), so what is checked is what
 * opens. Returns the normalized URL, or undefined.
 */
export function checkPageURL(url: string | undefined, controlURL: string): string | undefined {
  if (!url) return undefined;
  let u: URL;
  let control: URL;
  try {
    u = new URL(url);
    control = new URL(controlURL);
  } catch {
    return undefined;
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") return undefined;
  if (u.origin !== control.origin || u.username !== "" || u.password !== "" || u.search !== "" || u.hash !== "") return undefined;
  const prefix = control.pathname.replace(/\/+$/, "") + "/check/";
  if (!u.pathname.startsWith(prefix) || !checkID.test(u.pathname.slice(prefix.length))) return undefined;
  return u.href;
}

/**
 * The URL onBanner hands over: the first link of the banner that checkPageURL accepts, or
 * undefined. A banner is written by the machine logged in to, so only control's own check
 * page is acted on; every other link (another site, another page of control, a login page)
 * stays text in the terminal.
 */
export function bannerCheckURL(text: string, controlURL: string): string | undefined {
  for (const link of bannerLinks(text)) {
    const u = checkPageURL(link, controlURL);
    if (u) return u;
  }
  return undefined;
}
