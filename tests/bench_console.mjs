// The web console's first load (issue 28: under 100 ms from a local server), in Debian's
// chromium driven by puppeteer-core: each sample is a new incognito context (empty cache),
// the key already in sessionStorage (as after logging in once), and times from the
// navigation's start to (a) the load event (every asset fetched and run) and (b) the runs
// page drawn with its rows (the app's `fluxroute-ready` mark: the role probe and GET
// /v1/runs answered); and, as a yardstick, the load of /healthz in the same context.
// Prints one JSON object.
// usage: node bench_console.mjs URL KEY [SAMPLES]
import puppeteer from 'puppeteer-core';

const [url, key, n = '20'] = process.argv.slice(2);
const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--headless=new', '--disable-gpu', '--no-first-run'],
});
const load = [], ready = [], base = [];
try {
  for (let i = 0; i < +n + 2; i++) {
    const ctx = await browser.createBrowserContext();
    const page = await ctx.newPage();
    await page.setCacheEnabled(false);
    await page.evaluateOnNewDocument((k) => sessionStorage.setItem('fluxroute.key', k), key);
    await page.goto(url + '/ui/#/runs', {waitUntil: 'load'});
    await page.waitForFunction(() => performance.getEntriesByName('fluxroute-ready').length > 0 &&
      document.querySelector('#runs-table tr[data-run-id]'), {timeout: 10000});
    const t = await page.evaluate(() => ({
      load: performance.getEntriesByType('navigation')[0].loadEventEnd,
      ready: performance.getEntriesByName('fluxroute-ready')[0].startTime,
    }));
    if (i >= 2) { // two warm-up loads: chromium's own first-start costs are not the page's
      load.push(t.load);
      ready.push(t.ready);
    }
    // The same for /healthz (15 bytes of JSON, no script): what this machine's chromium
    // takes for any page, to read the figures against.
    await page.goto(url + '/healthz', {waitUntil: 'load'});
    if (i >= 2) base.push(await page.evaluate(() => performance.getEntriesByType('navigation')[0].loadEventEnd));
    await ctx.close();
  }
} finally {
  await browser.close();
}
const q = (a, p) => {
  const s = [...a].sort((x, y) => x - y);
  return Math.round(s[Math.min(s.length - 1, Math.floor(p * s.length))] * 10) / 10;
};
console.log(JSON.stringify({samples: load.length,
  load_ms: {p50: q(load, 0.5), max: q(load, 1)}, ready_ms: {p50: q(ready, 0.5), max: q(ready, 1)},
  healthz_load_ms: {p50: q(base, 0.5), max: q(base, 1)}}));
