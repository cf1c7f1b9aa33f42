// End-to-end test of the built dashboard in headless Chromium (playwright-core, no browser
// download), against a running Django backend and a TWS simulator.
//
//   DASHBOARD_URL=http://127.0.0.1:8000 npm run e2e
//
// DASHBOARD_URL          the backend serving the built dashboard, TWS (the simulator) up
// DASHBOARD_URL_NO_TWS   optional: a backend whose IBKR_PORT nothing listens on (TWS down)
// SCREENSHOT_DIR         where dashboard_backtest.png / dashboard_simulated.png go (optional)
// CHROMIUM               the browser (default /usr/bin/chromium)
//
// The backend should start with an empty database (the checks count fills and runs). Every
// wait has a timeout; the first failure ends the run with exit code 1 and a screenshot in
// e2e/output/.

import { mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const HERE = dirname(fileURLToPath(import.meta.url));
const BASE = (process.env.DASHBOARD_URL ?? "").replace(/\/$/, "");
const NO_TWS = (process.env.DASHBOARD_URL_NO_TWS ?? "").replace(/\/$/, "");
const SHOTS = process.env.SCREENSHOT_DIR ? resolve(process.env.SCREENSHOT_DIR) : null;
const OUTPUT = join(HERE, "output");
const TIMEOUT = 20_000;
const BACKTEST_TIMEOUT = 120_000;

if (!BASE) {
  console.error("e2e: set DASHBOARD_URL to the backend serving the built dashboard, e.g. http://127.0.0.1:8000");
  process.exit(2);
}

class Failure extends Error {}
function check(condition, message) {
  if (!condition) throw new Failure(message);
}

/** Poll `probe` until it returns a truthy value, or fail with `what` after `timeout` ms. */
async function until(what, probe, timeout = TIMEOUT) {
  const deadline = Date.now() + timeout;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await probe();
      if (last) return last;
    } catch (exc) {
      last = exc;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Failure(`timed out after ${timeout} ms waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
}

const results = [];
async function step(name, body) {
  const started = Date.now();
  try {
    await body();
    results.push([name, true]);
    console.log(`ok   ${name} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  } catch (exc) {
    results.push([name, false]);
    console.log(`FAIL ${name} (${((Date.now() - started) / 1000).toFixed(1)} s): ${exc.message}`);
    throw exc;
  }
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
  timeout: 60_000,
});
const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, deviceScaleFactor: 1 });
context.setDefaultTimeout(TIMEOUT);
context.setDefaultNavigationTimeout(30_000);
const page = await context.newPage();
const consoleErrors = [];
page.on("pageerror", (error) => consoleErrors.push(String(error)));

const rows = (testId) => page.locator(`[data-testid="${testId}"] .ant-table-tbody tr.ant-table-row`);
const chart = page.getByTestId("chart");
const chartNumber = async (name) => Number(await chart.getAttribute(`data-${name}`));

async function runBacktest({ symbols, timeframe }) {
  const form = page.getByRole("form", { name: "Backtest settings" });
  if (symbols) {
    const select = form.locator(".ant-form-item").filter({ has: page.getByLabel("Symbols") });
    while ((await select.locator(".ant-select-selection-item-remove").count()) > 0) {
      await select.locator(".ant-select-selection-item-remove").first().click();
    }
    for (const symbol of symbols) {
      await page.getByLabel("Symbols").fill(symbol);
      await page.getByLabel("Symbols").press("Enter");
    }
    await page.keyboard.press("Escape");
  }
  if (timeframe) {
    await page.getByLabel("Timeframe").click();
    await page.locator(".ant-select-dropdown:visible .ant-select-item-option", { hasText: new RegExp(`^${timeframe}$`) }).click();
  }
  await page.getByTestId("run-backtest").click();
}

try {
  await step("backtest page loads with the strategy's parameters", async () => {
    await page.goto(`${BASE}/`);
    await page.getByRole("form", { name: "Backtest settings" }).waitFor();
    for (const name of ["FAST", "SLOW", "SIGNAL", "MODE"]) {
      await page.getByLabel(name, { exact: true }).waitFor();
    }
    check((await page.getByLabel("FAST", { exact: true }).inputValue()) === "12", "FAST defaults to 12");
    const chosen = await page.locator(".ant-select-selection-item").allInnerTexts();
    for (const symbol of ["AAPL", "MSFT", "SPY"]) check(chosen.some((t) => t.includes(symbol)), `default symbol ${symbol} preselected`);
  });

  await step("a parameter out of bounds is refused next to its field", async () => {
    await page.getByLabel("FAST", { exact: true }).fill("500");
    await page.getByTestId("run-backtest").click();
    await page.getByText("must be at most 200").waitFor();
    await page.getByLabel("FAST", { exact: true }).fill("12");
    await page.getByText("must be at most 200").waitFor({ state: "detached" });
  });

  await step("the server's validation error shows next to the symbols", async () => {
    await runBacktest({ symbols: ["ZZZZ"] });
    await until("the symbols field error", async () => {
      const item = page.locator(".ant-form-item-has-error").filter({ has: page.getByLabel("Symbols") });
      return (await item.count()) > 0 && (await item.innerText()).includes("ZZZZ");
    });
  });

  await step("run a backtest: loading state, statistics, per-symbol table, trades, chart with markers", async () => {
    await runBacktest({ symbols: ["AAPL", "MSFT"], timeframe: "5m" });
    await page.getByText("Running backtest…").first().waitFor({ timeout: 5000 });
    await page.getByTestId("run-results").waitFor({ timeout: BACKTEST_TIMEOUT });
    await until("the URL naming the run", async () => /[?&]run=\d+/.test(page.url()));
    const stats = await page.getByTestId("summary-stats").innerText();
    for (const label of ["Net Profit [$]", "Return [%]", "Sharpe Ratio", "# Trades"]) check(stats.includes(label), `summary shows ${label}`);
    check((await rows("symbol-metrics").count()) === 2, "one metrics row per symbol");
    await until("candles and trade arrows on the chart", async () => (await chartNumber("bars")) > 100 && (await chartNumber("markers")) > 0, 30_000);
    check(await page.locator('[data-testid="chart"] canvas').first().isVisible(), "the chart draws on a canvas");
    if (SHOTS) {
      mkdirSync(SHOTS, { recursive: true });
      // The run's title at the top, under the header: the statistics and the whole chart.
      await page.setViewportSize({ width: 1440, height: 960 });
      await page.getByTestId("run-results").evaluate((el) => window.scrollTo(0, el.getBoundingClientRect().top + window.scrollY - 76));
      await page.waitForTimeout(500);
      await page.screenshot({ path: join(SHOTS, "dashboard_backtest.png") });
      await page.setViewportSize({ width: 1440, height: 900 });
    }
    await page.getByRole("tab", { name: /^Trades/ }).click();
    await until("trade rows", async () => (await rows("trades-table").count()) > 0);
    const pnl = page.locator('[data-testid="trades-table"] th', { hasText: "P&L" });
    await pnl.click();
    await until("trades sorted by P&L", async () => (await pnl.getAttribute("aria-sort")) === "ascending");
    await page.getByRole("tab", { name: "Monthly equity" }).click();
    await until("monthly equity rows", async () => (await rows("monthly-equity").count()) > 0);
    await page.getByRole("tab", { name: "Files" }).click();
    const files = await page.getByTestId("cache-files").innerText();
    check(files.includes("AAPL_backtest.json") && files.includes("MSFT_backtest.json"), `cache files listed: ${files}`);
  });

  await step("the chart loads older windows (1m bars, more than one window)", async () => {
    await page.getByRole("tab", { name: "Chart" }).click();
    await runBacktest({ symbols: ["SPY"], timeframe: "1m" });
    await until("the 1m run's chart", async () => (await chart.getAttribute("data-symbol")) === "SPY" && (await chartNumber("bars")) > 0, BACKTEST_TIMEOUT);
    const first = await chartNumber("bars");
    const status = await page.getByTestId("chart-status").innerText();
    check(status.includes("scroll left"), `more bars than one window: ${status}`);
    // Drag the chart to the right, towards older bars, until the next window comes in.
    const box = await chart.boundingBox();
    await until("an older window loaded by panning", async () => {
      await page.mouse.move(box.x + 100, box.y + 150);
      await page.mouse.down();
      await page.mouse.move(box.x + box.width - 100, box.y + 150, { steps: 8 });
      await page.mouse.up();
      return (await chartNumber("bars")) > first;
    }, 30_000);
    const second = await chartNumber("bars");
    await page.getByTestId("load-older").click();
    await until("another window from the button", async () => (await chartNumber("bars")) > second);
  });

  await step("past runs are listed and re-open with their results", async () => {
    await page.goto(`${BASE}/`);
    await until("past runs", async () => (await rows("past-runs").count()) >= 2);
    const oldest = rows("past-runs").filter({ hasText: "AAPL, MSFT" }).first();
    await oldest.getByRole("button", { name: "Open" }).click();
    await until("the re-opened run", async () => (await page.getByTestId("run-results").innerText()).includes("on AAPL, MSFT (5m)"));
    check((await rows("symbol-metrics").count()) === 2, "its per-symbol rows");
    await until("the form holding the run's settings", async () => {
      const chosen = await page.locator(".ant-form-item").filter({ has: page.getByLabel("Symbols") }).locator(".ant-select-selection-item").allInnerTexts();
      return chosen.join(",") === "AAPL,MSFT";
    });
    const url = page.url();
    await page.reload();
    await until("the run again after a reload", async () => (await page.getByTestId("run-results").innerText()).includes("on AAPL, MSFT (5m)"));
    check(page.url() === url, "the URL kept the run");
  });

  await step("navigation: /simulated, and a reload stays there", async () => {
    await page.getByRole("menuitem", { name: "Simulated trading" }).click();
    await until("the /simulated URL", async () => new URL(page.url()).pathname === "/simulated");
    await page.getByRole("form", { name: "Log a paper trade" }).waitFor();
    await page.reload();
    await page.getByRole("form", { name: "Log a paper trade" }).waitFor();
    check(new URL(page.url()).pathname === "/simulated", "still on /simulated");
  });

  await step("the order form refuses bad input next to the fields", async () => {
    await page.getByTestId("log-order").click();
    await page.getByText("enter a ticker").waitFor();
    await page.getByText("enter the shares").waitFor();
    await page.getByLabel("Quantity").fill("-5");
    await page.getByText("must be greater than 0").first().waitFor();
  });

  await step("log paper trades (a double click posts once): blotter and summary", async () => {
    const form = page.getByRole("form", { name: "Log a paper trade" });
    await page.getByLabel("Symbol", { exact: true }).fill("aapl");
    await form.getByText("BUY", { exact: true }).click();
    await page.getByLabel("Quantity").fill("100");
    await page.getByLabel("Price").fill("310.5");
    await page.getByLabel("Commission").fill("1");
    await page.getByTestId("log-order").dblclick();
    await until("the fill in the blotter", async () => (await rows("blotter").count()) === 1);
    await page.waitForTimeout(500);
    check((await rows("blotter").count()) === 1, "a double click stored one fill");
    await page.getByLabel("Symbol", { exact: true }).fill("AAPL");
    await form.getByText("SELL", { exact: true }).click();
    await page.getByLabel("Quantity").fill("40");
    await page.getByLabel("Price").fill("312");
    await page.getByTestId("log-order").click();
    await until("two fills", async () => (await rows("blotter").count()) === 2);
    const newest = await rows("blotter").first().innerText();
    check(newest.includes("SELL"), `newest first: ${newest}`);
    await until("the AAPL position of 60 with realized P&L", async () => {
      const text = await rows("positions-summary").first().innerText();
      return text.includes("AAPL") && text.includes("60") && text.includes("$58.00") ? text : false;
    });
    await page.getByLabel("Filter by symbol").fill("MSFT");
    await page.getByLabel("Filter by symbol").press("Enter");
    await page.getByText("No simulated orders for MSFT").waitFor();
    await page.getByLabel("Filter by symbol").fill("aapl");
    await page.getByLabel("Filter by symbol").press("Enter");
    await until("the AAPL fills again", async () => (await rows("blotter").count()) === 2);
    const activity = await page.getByTestId("recent-activity").innerText();
    check(activity.includes("AAPL") && activity.includes("backtest"), `recent activity: ${activity}`);
  });

  await step("toggle the paper connection and see the portfolio", async () => {
    await page.getByTestId("connection-toggle").click();
    await until("the connected state", async () => (await page.getByTestId("connection-state").innerText()) === "connected");
    await until("the account's positions", async () => (await rows("portfolio-positions").count()) > 0);
    const portfolio = await page.getByTestId("portfolio").innerText();
    for (const text of ["Net liquidation", "Daily P&L", "Unrealized P&L", "USD", "refreshing every 5 s"]) check(portfolio.includes(text), `portfolio shows ${text}`);
    if (SHOTS) {
      await page.evaluate(() => window.scrollTo(0, 0));
      await page.locator(".ant-message-notice").first().waitFor({ state: "detached", timeout: 10_000 }).catch(() => {});
      await page.waitForTimeout(500);
      await page.screenshot({ path: join(SHOTS, "dashboard_simulated.png") });
    }
    await page.getByTestId("connection-toggle").click();
    await until("disconnected again", async () => (await page.getByTestId("connection-state").innerText()) === "disconnected");
  });

  await step("a narrow window still works", async () => {
    await page.setViewportSize({ width: 420, height: 860 });
    await page.getByTestId("log-order").waitFor();
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    check(width <= 440, `no sideways scrolling of the page (${width} px)`);
    await page.setViewportSize({ width: 1440, height: 900 });
  });

  if (NO_TWS) {
    await step("TWS down: the portfolio says TWS unavailable", async () => {
      await page.goto(`${NO_TWS}/simulated`);
      const alert = page.getByTestId("portfolio").getByTestId("error-tws");
      await alert.waitFor({ timeout: 30_000 });
      check((await alert.innerText()).includes("TWS unavailable"), "titled TWS unavailable");
    });
  }

  await step("backend down: the page says the backend is unreachable", async () => {
    await page.route("**/api/**", (route) => route.abort("connectionrefused"));
    await page.goto(`${BASE}/simulated`);
    await page.getByTestId("error-network").first().waitFor();
    check((await page.getByTestId("error-network").first().innerText()).includes("Backend unreachable"), "titled Backend unreachable");
    await page.goto(`${BASE}/`);
    await page.getByTestId("error-network").first().waitFor();
    await page.unroute("**/api/**");
  });

  check(consoleErrors.length === 0, `no uncaught errors in the page: ${consoleErrors.join("; ")}`);
} catch (exc) {
  mkdirSync(OUTPUT, { recursive: true });
  await page.screenshot({ path: join(OUTPUT, "failure.png"), fullPage: true }).catch(() => {});
  console.log(`e2e: failed: ${exc.message}\n(screenshot: ${join(OUTPUT, "failure.png")})`);
  if (!(exc instanceof Failure)) console.log(exc.stack);
  process.exitCode = 1;
} finally {
  await browser.close();
}
const passed = results.filter(([, ok]) => ok).length;
console.log(`e2e: ${passed} of ${results.length} steps passed${process.exitCode ? "" : ", all good"}`);
