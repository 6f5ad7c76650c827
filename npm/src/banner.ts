// Links in SSH authentication banners (check mode: "... Visit: URL").

/** The first http(s) URL in a banner, if any (the wasm reports only those on control's origin). */
export function bannerURL(text: string): string | undefined {
  for (const m of text.matchAll(/https?:\/\/[^\s"'<>]+/gi)) {
    const w = m[0].replace(/[.,;:!?)]+$/, "");
    try {
      const u = new URL(w);
      if (u.protocol === "http:" || u.protocol === "https:") return w;
    } catch {
      // not a URL after all
    }
  }
  return undefined;
}

/** The control server's own pages that a banner's link may lead to: check mode and interactive login. */
const controlPages = ["/check/", "/login/"];

/**
 * The one rule for opening a banner's link without asking: it must be on the control
 * server's origin (controlURL's scheme, host and port) and at one of its check or login
 * pages. Returns the URL to open, or undefined: anything else (another site, another path
 * on control, not an http(s) URL) stays text in the terminal. A banner comes from the
 * machine logged in to, so only control's own pages are trusted.
 */
export function controlPageURL(url: string | undefined, controlURL: string): string | undefined {
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
  if (u.origin !== control.origin || u.username !== "" || u.password !== "") return undefined;
  if (!controlPages.some((p) => u.pathname.startsWith(p) && u.pathname.length > p.length)) return undefined;
  return u.href;
}
