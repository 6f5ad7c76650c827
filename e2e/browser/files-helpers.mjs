// What the file-transfer browser tests do in a page: drop a file on its terminal, save
// downloads onto the origin-private file system, read a saved file back.

/**
 * Drops a file of size random bytes (or zeros) named name on the page's #terminal, as a drag
 * from the desktop does, and resolves with its SHA-256 in hex.
 * @param {import("playwright-core").Page} page @param {string} name @param {number} size @param {boolean} [random]
 */
export function dropFile(page, name, size, random = true) {
  return page.evaluate(
    async ({ name, size, random }) => {
      const data = new Uint8Array(size);
      if (random) for (let i = 0; i < data.length; i += 65536) crypto.getRandomValues(data.subarray(i, i + 65536));
      const dt = new DataTransfer();
      dt.items.add(new File([data], name));
      const el = /** @type {HTMLElement} */ (document.getElementById("terminal"));
      el.dispatchEvent(new DragEvent("dragover", { dataTransfer: dt, bubbles: true, cancelable: true }));
      el.dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
      const h = new Uint8Array(await crypto.subtle.digest("SHA-256", data));
      return [...h].map((b) => b.toString(16).padStart(2, "0")).join("");
    },
    { name, size, random },
  );
}

/** Makes showSaveFilePicker save onto the origin-private file system (no dialog to click). @param {import("playwright-core").Page} page */
export function saveToOPFS(page) {
  return page.evaluate(() => {
    /** @type {any} */ (window).showSaveFilePicker = async (/** @type {{ suggestedName: string }} */ { suggestedName }) =>
      (await navigator.storage.getDirectory()).getFileHandle(suggestedName, { create: true });
  });
}

/** The size and SHA-256 (hex) of a file saved by saveToOPFS. @param {import("playwright-core").Page} page @param {string} name */
export function savedFile(page, name) {
  return page.evaluate(async (name) => {
    const f = await (await (await navigator.storage.getDirectory()).getFileHandle(name)).getFile();
    const h = new Uint8Array(await crypto.subtle.digest("SHA-256", await f.arrayBuffer()));
    return { size: f.size, sum: [...h].map((b) => b.toString(16).padStart(2, "0")).join("") };
  }, name);
}
