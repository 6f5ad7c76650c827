// Reconnect and persistence (issue 19, part 2), in Chromium against `tsconnect control` and a
// real agent on this machine: the SSH… dialog offers "Attach to tmux" where the machine has
// tmux; the agent dies (SIGKILL, its connections with it) and comes back; the terminal says
// "Disconnected — press Enter to reconnect", Enter reconnects in place through a fresh key and
// node, and tmux brings back the same shell (a variable set before the drop is still set).
// Without the attach option a reconnect gets a new login shell in the same terminal.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { consoleSuite, consoleLogin, openSSHDialog, alice } from "./console-harness.mjs";
import { waitTerminal } from "./demo.js";

/** Whether a tmux session named tsconnect runs for this user: never touch one the test did not start. */
function tmuxSession() {
  try {
    execFileSync("tmux", ["has-session", "-t", "tsconnect"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}
let hasTmux = true;
try {
  execFileSync("tmux", ["-V"], { stdio: "ignore" });
} catch {
  hasTmux = false;
}
const skip = !hasTmux ? "tmux is not installed" : tmuxSession() ? "a tmux session named tsconnect already runs here" : false;
let started = false;

const suite = consoleSuite({ tagged: ["alpha"] }, { skip });
after(() => {
  if (!started) return;
  try {
    execFileSync("tmux", ["kill-session", "-t", "tsconnect"], { stdio: "ignore" });
  } catch {
    // gone already
  }
});

/** Opens SSH… on alpha as root (attached to tmux or not) and returns the terminal window. */
async function openSession(page, context, attach) {
  const dlg = await openSSHDialog(page, "alpha");
  const box = dlg.locator("input[name=attach]");
  assert.equal(await box.count(), 1, "the dialog offers to attach to tmux");
  assert.match(await dlg.locator("label.attach").textContent(), /Attach to tmux/);
  if (attach) await box.check();
  await dlg.locator('input[name=user][value="root"]').check();
  const [term] = await Promise.all([context.waitForEvent("page"), dlg.getByRole("button", { name: "Connect" }).click()]);
  await term.waitForLoadState();
  return term;
}

/** Kills the agent, starts it again, and pokes the dead session until the terminal says it dropped. */
async function dropConnection(term) {
  await suite.net.agents.alpha.restart();
  // The next packet on the old connection meets the new agent, which knows no such connection.
  const said = term.locator(".xterm-rows").filter({ hasText: "Disconnected — press Enter to reconnect" });
  const deadline = Date.now() + 60_000;
  while ((await said.count()) === 0) {
    assert.ok(Date.now() < deadline, "the terminal never said it was disconnected");
    await term.keyboard.type(" ");
    await new Promise((r) => setTimeout(r, 500));
  }
}

test("attached to tmux: the agent dies, Enter reconnects in place with a fresh key, the same shell is back", { skip }, async (t) => {
  const { context, page } = await suite.page(t);
  await consoleLogin(page, suite.net.url, alice);
  const term = await openSession(page, context, true);
  started = true;
  await waitTerminal(term, /[$#] *$/m, 60_000);
  await term.locator(".xterm-helper-textarea").focus();
  await term.keyboard.type("export KEPT=yes-$((40+2)); echo in-tmux=${TMUX:+yes}\n");
  await waitTerminal(term, /^in-tmux=yes\s*$/m, 20_000);
  const keysBefore = suite.net.admin(["keys", "list"]);

  await dropConnection(term);
  const item = page.locator("#sessions li .state");
  await item.filter({ hasText: "Disconnected — press Enter in the terminal to reconnect." }).waitFor();

  await term.keyboard.press("Enter");
  await item.filter({ hasText: "Connected: root@alpha" }).waitFor({ timeout: 60_000 });
  await term.keyboard.type("echo kept=$KEPT\n");
  await waitTerminal(term, /^kept=yes-42\s*$/m, 20_000);
  // A fresh single-use key was minted for the reconnect.
  assert.notEqual(suite.net.admin(["keys", "list"]), keysBefore, "a new key for the reconnect");
});

test("without tmux a reconnect is a new login shell in the same terminal", { skip }, async (t) => {
  const { context, page } = await suite.page(t);
  await consoleLogin(page, suite.net.url, alice);
  const term = await openSession(page, context, false);
  await waitTerminal(term, /[$#] *$/m, 60_000);
  await term.locator(".xterm-helper-textarea").focus();
  await term.keyboard.type("export GONE=before; echo marker-$((6*7))\n");
  await waitTerminal(term, /^marker-42\s*$/m, 20_000);

  await dropConnection(term);
  await term.keyboard.press("Enter");
  await page.locator("#sessions li .state").filter({ hasText: "Connected: root@alpha" }).waitFor({ timeout: 60_000 });
  await term.keyboard.type("echo gone=${GONE:-unset}\n");
  const text = await waitTerminal(term, /^gone=unset\s*$/m, 20_000);
  assert.match(text, /^marker-42\s*$/m, "the scrollback from before the drop is still there");
});
