// The web console's first load (issue 28: under 100 ms from a local server), in Debian's
// chromium driven by puppeteer-core: each sample is a new incognito context (empty cache,
// as for a first-time user), the key already in sessionStorage (as after logging in
// once), and times from the navigation's start to (a) the load event (every asset
// fetched and run) and (b) the runs page drawn with its rows (the app's `fluxroute-ready`
// mark: GET /v1/runs answered and drawn); and, as a yardstick, the load of /healthz in
// the same context after the page (what any page costs this browser here once the context
// has its renderer), and as the first page of another new context (what the first page of
// a new context costs this browser); and /ui/icon.svg as the first page of a new context:
// the console's headers (Cross-Origin-Opener-Policy among them: a new renderer process)
// around 320 bytes, the floor under the page's figures.
// With a second server
// (BEFORE_URL, another build), each round loads both, alternating which goes first, so a
// busy machine weighs on both alike.  Prints one JSON object.
// usage: node bench_console.mjs URL KEY [SAMPLES [BEFORE_URL]]
import puppeteer from 'puppeteer-core';

const [url, key, n = '40', beforeUrl] = process.argv.slice(2);
const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  // Without the omnibox popup's WebUI pages, which this chromium makes for every new
  // window (context) and which load ~100 chrome:// resources while the measured page
  // loads: the window's own chrome, not the page (Puppeteer disables both by default
  // since its PR #15278).
  args: ['--no-sandbox', '--headless=new', '--disable-gpu', '--no-first-run',
    ...(process.env.BENCH_CONSOLE_OMNIBOX ? [] : ['--disable-features=WebUIOmniboxPopup,WebUIOmniboxAimPopup'])],
});
const servers = [{name: 'after', url}].concat(beforeUrl ? [{name: 'before', url: beforeUrl}] : []);
const got = Object.fromEntries(servers.map((s) => [s.name, {load: [], ready: [], base: [], cold: [], icon: []}]));

async function sample(base, into) {
  const ctx = await browser.createBrowserContext();
  try {
    const page = await ctx.newPage();
    await page.setCacheEnabled(false);
    await page.evaluateOnNewDocument((k) => sessionStorage.setItem('fluxroute.key', k), key);
    await page.goto(base + '/ui/#/runs', {waitUntil: 'load'});
    await page.waitForFunction(() => performance.getEntriesByName('fluxroute-ready').length > 0 &&
      document.querySelector('#runs-table tr[data-run-id]'), {timeout: 10000});
    const t = await page.evaluate(() => ({
      load: performance.getEntriesByType('navigation')[0].loadEventEnd,
      ready: performance.getEntriesByName('fluxroute-ready')[0].startTime,
    }));
    // /healthz (15 bytes of JSON, no script) in the same context: the browser's own cost.
    await page.goto(base + '/healthz', {waitUntil: 'load'});
    const h = await page.evaluate(() => performance.getEntriesByType('navigation')[0].loadEventEnd);
    if (into) {
      into.load.push(t.load);
      into.ready.push(t.ready);
      into.base.push(h);
    }
  } finally {
    await ctx.close();
  }
  // /healthz and the icon, each as the first page of a new context.
  for (const [path, list] of [['/healthz', 'cold'], ['/ui/icon.svg', 'icon']]) {
    const cold = await browser.createBrowserContext();
    try {
      const page = await cold.newPage();
      await page.setCacheEnabled(false);
      await page.goto(base + path, {waitUntil: 'load'});
      const h = await page.evaluate(() => performance.getEntriesByType('navigation')[0].loadEventEnd);
      if (into) into[list].push(h);
    } finally {
      await cold.close();
    }
  }
}

try {
  // Two warm-up rounds: chromium's own first-start costs are not the page's.
  for (let i = 0; i < +n + 2; i++) {
    const order = i % 2 ? [...servers].reverse() : servers;
    for (const s of order) await sample(s.url, i >= 2 ? got[s.name] : null);
  }
} finally {
  await browser.close();
}
const q = (a, p) => {
  const s = [...a].sort((x, y) => x - y);
  return Math.round(s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)] * 10) / 10;
};
const stats = (a) => ({p50: q(a, 0.5), p90: q(a, 0.9), p99: q(a, 0.99)});
const out = (g) => ({load_ms: stats(g.load), ready_ms: stats(g.ready), healthz_load_ms: stats(g.base),
  healthz_first_load_ms: stats(g.cold), icon_first_load_ms: stats(g.icon)});
console.log(JSON.stringify({samples: got.after.load.length, ...out(got.after),
  ...(beforeUrl ? {before: out(got.before)} : {})}));
