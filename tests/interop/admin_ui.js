// Drives the real Socket.IO admin UI (@socket.io/admin-ui's built ui/dist) in headless
// Chromium through playwright-core, for tests/test_admin_ui.py.
//
//   node admin_ui.js '{"uiUrl": ..., "serverUrl": ..., "username": ..., "password": ...,
//                      "servers": [uid, ...], "sockets": [sid, ...], "dashboard": [text, ...],
//                      "screenshot": path,
//                      "chromium": "/usr/bin/chromium", "userDataDir": dir, "timeoutMs": n}'
//
// Logs in through the connection form, waits (up to timeoutMs) until the Servers page
// lists every expected server id, the Sockets page every expected socket id and the
// dashboard every expected text (whitespace collapsed to one space), takes a screenshot of the dashboard, and prints one JSON
// object with the text each page showed.
"use strict";

const fs = require("fs");
const { chromium } = require("playwright-core");

const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

async function waitForText(page, selector, expected, deadline) {
  let text = "";
  for (;;) {
    text = (await page.locator(selector).innerText()).replace(/\s+/g, " ");
    if (expected.every((s) => text.includes(s)) || Date.now() > deadline) {
      return text;
    }
    await page.waitForTimeout(100);
  }
}

// The charts animate when their data changes; the histograms change with every
// server_stats, the overview doughnuts only when counts do. Wait until the overview row
// looks the same twice in a row, then take the whole page.
async function stableScreenshot(page, path, deadline) {
  const overview = { x: 0, y: 0, width: 1280, height: 560 };
  let previous = null;
  for (;;) {
    const shot = await page.screenshot({ clip: overview });
    if ((previous && shot.equals(previous)) || Date.now() > deadline) {
      await page.screenshot({ path });
      return;
    }
    previous = shot;
    await page.waitForTimeout(200);
  }
}

async function main() {
  const opts = JSON.parse(process.argv[2]);
  const deadline = Date.now() + opts.timeoutMs;
  const context = await chromium.launchPersistentContext(opts.userDataDir, {
    executablePath: opts.chromium,
    headless: true,
    args: CHROMIUM_FLAGS,
    viewport: { width: 1280, height: 800 },
    timeout: opts.timeoutMs,
  });
  const result = { errors: [] };
  try {
    const page = context.pages()[0] || (await context.newPage());
    page.setDefaultTimeout(opts.timeoutMs);
    page.on("pageerror", (err) => result.errors.push(String(err)));
    // The UI links Google fonts and an icon font from a CDN: nothing leaves the machine.
    const local = new URL(opts.uiUrl).hostname;
    await page.route("**/*", (route) => {
      const host = new URL(route.request().url()).hostname;
      return host === local ? route.continue() : route.abort();
    });
    await page.goto(opts.uiUrl);
    await page.getByLabel("Server URL").fill(opts.serverUrl);
    await page.getByLabel("Username").fill(opts.username);
    await page.getByLabel("Password").fill(opts.password);
    await page.getByRole("button", { name: "Connect" }).click();
    await page.getByRole("dialog").waitFor({ state: "hidden" });

    await page.goto(opts.uiUrl + "#/servers/");
    result.serversPage = await waitForText(page, "main", opts.servers, deadline);
    await page.goto(opts.uiUrl + "#/sockets/");
    result.socketsPage = await waitForText(page, "main", opts.sockets, deadline);
    await page.goto(opts.uiUrl + "#/");
    result.dashboard = await waitForText(page, "main", opts.dashboard, deadline);
    await stableScreenshot(page, opts.screenshot, deadline);
  } finally {
    await context.close();
  }
  process.stdout.write(JSON.stringify(result) + "\n");
}

main().catch((err) => {
  process.stderr.write(String((err && err.stack) || err) + "\n");
  process.exit(1);
});
