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
