// File transfer beside a terminal (the demo page, the console's child windows): drop files on
// the terminal (or "Upload") to put them in the remote home; "Files" lists the home with a Download button per file, and a
// path field downloads any file by its path. Each transfer shows a
// progress bar with rate and time left, and Cancel. Downloads stream to disk through the File
// System Access API (showSaveFilePicker, Chromium); without it the page says so: a streamed
// download needs that API here (no Service Worker), and a Blob of the whole file is no option.
// Stable hooks for tests: #files-button, #upload-button, #files (the browser: li[data-name]),
// #download-form (#download-path and its button),
// #transfers (li[data-name][data-state="running"|"interrupted"|"done"|"failed"|"canceled"]; a
// failed one has a Retry button). A transfer whose connection drops is "interrupted" and
// continues where it got to once the terminal reconnects (TerminalSession.files).

import type { SSHFiles } from "../../npm/types/index.js";

type SavePicker = (o: { suggestedName: string }) => Promise<{ createWritable(): Promise<WritableStream<Uint8Array>> }>;

const mib = (n: number) => `${(n / (1 << 20)).toFixed(1)} MiB`;

/** What a failed transfer of path says: the common refusals in words, else the error's own message. */
function explain(e: Error & { code?: string }, path: string): string {
  switch (e.code) {
    case "no_such_file":
      return `No such file: ${path}`;
    case "permission_denied":
      return `Permission denied: ${path}`;
    case "is_directory":
      return `The path ${path} is a directory: only files can be downloaded`;
  }
  return e.message;
}

/**
 * A progress row: returns its update, interrupted, resumed and end functions. A failed row
 * offers Retry (retry: the transfer again from the start, in a new row).
 */
function transferRow(list: HTMLElement, label: string, cancel: () => void, retry: () => void) {
  const document = list.ownerDocument;
  const li = document.createElement("li");
  li.dataset.name = label;
  li.dataset.state = "running";
  const name = document.createElement("span");
  name.textContent = label;
  const bar = document.createElement("progress");
  bar.max = 1;
  bar.value = 0;
  const text = document.createElement("span");
  const stop = document.createElement("button");
  stop.textContent = "Cancel";
  stop.onclick = cancel;
  li.append(name, bar, text, stop);
  list.append(li);
  let started = performance.now();
  let base = 0; // bytes at started: the rate counts from a resume on
  let rate = 0;
  let last = 0;
  return {
    update(bytes: number, total?: number) {
      const secs = (performance.now() - started) / 1000;
      rate = secs > 0 ? (bytes - base) / secs : 0;
      last = bytes;
      if (total) bar.value = bytes / total;
      const left = total && rate > 0 ? `, ${Math.ceil((total - bytes) / rate)} s left` : "";
      text.textContent = `${mib(bytes)}${total ? ` of ${mib(total)}` : ""} · ${mib(rate)}/s${left}`;
    },
    interrupted(e: Error) {
      li.dataset.state = "interrupted";
      text.textContent = `Interrupted at ${mib(last)}: ${e.message}. It continues from there once the terminal reconnects (press Enter in it).`;
    },
    resumed() {
      li.dataset.state = "running";
      text.textContent = `Resuming at ${mib(last)}…`;
      started = performance.now();
      base = last;
    },
    end(state: "done" | "failed" | "canceled", message = "") {
      li.dataset.state = state;
      stop.remove();
      if (state === "done") {
        bar.value = 1;
        text.textContent = `${mib(last)} · ${mib(rate)}/s · done`;
      }
      if (message) text.textContent = message;
      if (state === "failed") {
        const again = document.createElement("button");
        again.textContent = "Retry";
        again.onclick = () => {
          li.remove();
          retry();
        };
        li.append(again);
      }
    },
  };
}

/**
 * Wires file transfer for files (the terminal's session) around terminalEl, its buttons into
 * toolbar; both may live in a child window (the save picker is then that window's, where the
 * click was).
 */
export function setupFiles(files: SSHFiles, terminalEl: HTMLElement, toolbar: HTMLElement) {
  const document = terminalEl.ownerDocument;
  const view = document.defaultView ?? window;
  const transfers = document.createElement("ul");
  transfers.id = "transfers";
  const browser = document.createElement("ul");
  browser.id = "files";
  browser.hidden = true;
  const filesButton = document.createElement("button");
  filesButton.id = "files-button";
  filesButton.textContent = "Files";
  const uploadButton = document.createElement("button");
  uploadButton.id = "upload-button";
  uploadButton.textContent = "Upload";
  const picker = document.createElement("input");
  picker.type = "file";
  picker.multiple = true;
  picker.hidden = true;
  toolbar.append(filesButton, uploadButton, picker);
  terminalEl.before(browser);
  terminalEl.after(transfers);

  const upload = (file: File) => {
    const ac = new AbortController();
    const row = transferRow(
      transfers,
      file.name,
      () => ac.abort(),
      () => upload(file),
    );
    files
      .upload(file.name, file, {
        signal: ac.signal,
        onProgress: (b, t) => row.update(b, t),
        onInterrupted: (e) => row.interrupted(e),
        onResumed: () => row.resumed(),
      })
      .then(
        () => {
          row.end("done");
          if (!browser.hidden) void list();
        },
        (e: Error & { code?: string }) => row.end(e.code === "canceled" ? "canceled" : "failed", explain(e, file.name)),
      );
  };
  /** Downloads remote path (absolute, or relative to the home) as a file named name. */
  const download = async (path: string, name: string) => {
    const picker = (view as unknown as { showSaveFilePicker?: SavePicker }).showSaveFilePicker;
    const save = picker?.bind(view);
    const ac = new AbortController();
    const row = transferRow(
      transfers,
      name,
      () => ac.abort(),
      () => void download(path, name),
    );
    if (!save) {
      row.end("failed", "Downloading needs the File System Access API (Chromium-based browsers).");
      return;
    }
    try {
      // Opened first: a missing file, a directory or one it may not read fails before a file is made to save into.
      const d = await files.download(path, {
        signal: ac.signal,
        onProgress: (b, t) => row.update(b, t),
        onInterrupted: (e) => row.interrupted(e),
        onResumed: () => row.resumed(),
      });
      let out: WritableStream<Uint8Array>;
      try {
        out = await (await save({ suggestedName: name })).createWritable();
      } catch (err) {
        await d.stream.cancel();
        throw err;
      }
      // pipeTo aborts the writable on failure: a canceled download leaves no partial file.
      await d.stream.pipeTo(out, { signal: ac.signal });
      row.end("done");
    } catch (err) {
      const x = err as Error & { code?: string };
      row.end(x.code === "canceled" || x.name === "AbortError" ? "canceled" : "failed", explain(x, path));
    }
  };
  const list = async () => {
    try {
      const l = await files.list();
      browser.replaceChildren(
        ...l.entries
          .sort((a, b) => Number(b.isDir) - Number(a.isDir) || a.name.localeCompare(b.name))
          .map((e) => {
            const li = document.createElement("li");
            li.dataset.name = e.name;
            li.textContent = `${e.name}${e.isDir ? "/" : ""} `;
            if (!e.isDir) {
              const b = document.createElement("button");
              b.textContent = `Download (${mib(e.size)})`;
              b.onclick = () => void download(`${l.path}/${e.name}`, e.name);
              li.append(b);
            }
            return li;
          }),
      );
    } catch (e) {
      browser.textContent = e instanceof Error ? e.message : String(e);
    }
  };
  // Download by a typed path: absolute, or relative to the home.
  const byPath = document.createElement("form");
  byPath.id = "download-form";
  byPath.hidden = true;
  const pathField = document.createElement("input");
  pathField.id = "download-path";
  pathField.placeholder = "Path on the remote (e.g. /var/log/syslog or notes.txt)";
  pathField.required = true;
  pathField.size = 40;
  const pathButton = document.createElement("button");
  pathButton.textContent = "Download";
  byPath.append(pathField, pathButton);
  browser.before(byPath);
  byPath.onsubmit = (e) => {
    e.preventDefault();
    const path = pathField.value.trim();
    const name = path.replace(/\/+$/, "").split("/").pop() || "download";
    if (path) void download(path, name);
  };
  filesButton.onclick = () => {
    browser.hidden = !browser.hidden;
    byPath.hidden = browser.hidden;
    if (!browser.hidden) void list();
  };
  uploadButton.onclick = () => picker.click();
  picker.onchange = () => {
    for (const f of picker.files ?? []) upload(f);
    picker.value = "";
  };
  terminalEl.addEventListener("dragover", (e) => {
    if (e.dataTransfer?.types.includes("Files")) e.preventDefault();
  });
  terminalEl.addEventListener("drop", (e) => {
    if (!e.dataTransfer?.files.length) return;
    e.preventDefault();
    for (const f of e.dataTransfer.files) upload(f);
  });
}
