// Drives the real Socket.IO admin UI (@socket.io/admin-ui's built ui/dist) in headless
// Chromium through playwright-core, for tests/test_admin_ui.py.
//
//   node admin_ui.js '{"uiUrl": ..., "serverUrl": ..., "username": ..., "password": ...,
//                      "servers": [uid, ...], "sockets": [sid, ...], "dashboard": [text, ...],
//                      "screenshot": path, "socketsScreenshot": path,
//                      "chromium": "/usr/bin/chromium", "userDataDir": dir, "timeoutMs": n}'
//
// Logs in through the connection form, waits (up to timeoutMs) until the Servers page
// lists every expected server id, the Sockets page every expected socket id and the
// dashboard every expected text (whitespace collapsed to one space), takes a screenshot
// of the Sockets page and of the dashboard, and prints one JSON object with the text each
// page showed.
"use strict";

const path = require("path");
const { chromium } = require("playwright-core");

const MDI_FONT = path.join(__dirname, "node_modules", "@mdi", "font");

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

// Pages slide in, and charts animate when their data changes (the histograms with every
// server_stats, the overview doughnuts only when counts change). Wait until the region
// `still` (default: the whole page) looks the same twice in a row, then take the page.
async function stableScreenshot(page, file, deadline, still = undefined) {
  let previous = null;
  for (;;) {
    const shot = await page.screenshot({ clip: still });
    if ((previous && shot.equals(previous)) || Date.now() > deadline) {
      await page.screenshot({ path: file });
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
    // The UI links web fonts and its icon font (@mdi/font) from CDNs: nothing leaves the
    // machine; the icon font comes from node_modules, the rest is refused.
    const local = new URL(opts.uiUrl).hostname;
    await page.route("**/*", (route) => {
      const url = new URL(route.request().url());
      const mdi = url.pathname.match(/\/@mdi\/font@[^/]+\/(css|fonts)\/([\w.-]+)$/);
      if (url.hostname === local) {
        return route.continue();
      } else if (mdi) {
        return route.fulfill({ path: path.join(MDI_FONT, mdi[1], mdi[2]) });
      }
      return route.abort();
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
    await stableScreenshot(page, opts.socketsScreenshot, deadline);
    await page.goto(opts.uiUrl + "#/");
    result.dashboard = await waitForText(page, "main", opts.dashboard, deadline);
    const overview = { x: 0, y: 0, width: 1280, height: 560 };
    await stableScreenshot(page, opts.screenshot, deadline, overview);
  } finally {
    await context.close();
  }
  process.stdout.write(JSON.stringify(result) + "\n");
}

main().catch((err) => {
  process.stderr.write(String((err && err.stack) || err) + "\n");
  process.exit(1);
});
