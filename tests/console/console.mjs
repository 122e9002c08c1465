// The web console (/ui/) in a real browser: headless Chromium (Debian's package) driven by
// puppeteer-core (tests/package.json).  Run by tests/e2e/e2e_console.sh, which starts
// `fluxroute serve` on 127.0.0.1 with the manifests and keys below and passes:
//   SERVE_URL     http://127.0.0.1:PORT of that server
//   OP_KEY        an operator key of tenant acme; VIEWER_KEY a viewer key of the same tenant
//   CHROMIUM      the browser to drive (/usr/bin/chromium)
//   SHOTS         the folder for the screenshots (git-ignored), emptied by the script
//   PROFILE       an empty folder for the browser profile
// The runs the pages show are made here through the API first (fetch), so every check
// knows the run it looks for.  Prints one TAP-like line per check ("ok - ..." or
// "not ok - ..." with the reason); exits 1 when any failed.
//
// The pages are found through the DOM contract of issue 28 (the #ids, data-* attributes,
// the hash routes); nothing here depends on their layout or wording beyond it, except
// that status words and step outputs appear as text.  Every wait has a deadline; there
// is no fixed sleep.
import fs from 'node:fs';
import path from 'node:path';
import puppeteer from 'puppeteer-core';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`console.mjs: ${name} is not set (run through tests/e2e/e2e_console.sh)`);
  return v;
};
const BASE = env('SERVE_URL');
const OP_KEY = env('OP_KEY');
const VIEWER_KEY = env('VIEWER_KEY');
const CHROMIUM = env('CHROMIUM');
const SHOTS = env('SHOTS');
const PROFILE = env('PROFILE');
const WAIT = Number(process.env.CONSOLE_WAIT_MS || 20000); // one condition, busy machine
const BUDGET_MS = 150000; // the whole file; the shell's timeout is above it

let passed = 0, failed = 0;
const ok = (name) => { passed++; console.log(`ok - ${name}`); };
const notOk = (name, ...why) => {
  failed++;
  console.log(`not ok - ${name}`);
  for (const w of why) for (const line of String(w).split('\n').slice(0, 30)) console.log(`#   ${line}`);
};
const expect = (name, cond, ...why) => (cond ? ok(name) : notOk(name, ...why));

const watchdog = setTimeout(() => {
  notOk('the browser test finishes within its budget', `still running after ${BUDGET_MS} ms`);
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(1);
}, BUDGET_MS);

// ---- the API, as a client would call it -----------------------------------------------
async function call(method, p, key, body) {
  const r = await fetch(BASE + p, {method, headers: {Authorization: 'Bearer ' + key,
    ...(body ? {'Content-Type': 'application/json'} : {})}, body: body ? JSON.stringify(body) : undefined});
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch (_) { /* not JSON */ }
  return {status: r.status, json, text};
}
// A finished run of MANIFEST (sync), traced; returns its report.
async function run(manifest, input, extra = {}) {
  const r = await call('POST', '/v1/run', OP_KEY, {manifest, input, trace: true, ...extra});
  if (r.status !== 200 || !r.json || !r.json.run_id)
    throw new Error(`POST /v1/run ${manifest}: HTTP ${r.status} ${r.text.slice(0, 400)}`);
  return r.json;
}

// ---- the browser ----------------------------------------------------------------------
const dialogs = [];      // every alert/confirm/prompt that opened, with its page
const pageErrors = [];   // uncaught exceptions in the pages
const foreign = [];      // requests to anywhere but the server's own origin
const keyInUrl = [];     // requests whose URL carries a key
const consoleLines = []; // the pages' console errors, shown when a check fails

function watch(page, label) {
  page.on('dialog', async (d) => {
    dialogs.push(`${label}: ${d.type()} "${d.message()}"`);
    await d.dismiss().catch(() => {});
  });
  page.on('pageerror', (e) => pageErrors.push(`${label}: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') consoleLines.push(`${label}: ${m.text()}`);
  });
  page.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith(BASE + '/') && !u.startsWith('data:') && !u.startsWith('blob:'))
      foreign.push(`${label}: ${r.method()} ${u}`);
    if (u.includes(OP_KEY) || u.includes(VIEWER_KEY)) keyInUrl.push(`${label}: ${u}`);
  });
}

let shotNo = 0;
async function shot(page, name) {
  shotNo++;
  const file = path.join(SHOTS, `${String(shotNo).padStart(2, '0')}-${name}.png`);
  try {
    await page.screenshot({path: file, fullPage: true});
    return file;
  } catch (e) {
    notOk(`screenshot ${name}`, e.message);
    return null;
  }
}

// The visible text of the page's main view, for failure messages.
const viewText = (page) => page.evaluate(() => (document.querySelector('main') || document.body).innerText.slice(0, 1500)).catch((e) => `(no text: ${e.message})`);

// A check that drives the page: any exception (a selector that never came) fails it
// with the page's text and a screenshot, and the next check still runs.
let loggedIn = false; // the checks after the login need it: without it they fail at once
async function step(name, page, fn, needsLogin = true) {
  if (needsLogin && !loggedIn) {
    notOk(name, 'not checked: the login failed');
    return;
  }
  try {
    await fn();
  } catch (e) {
    const file = page ? await shot(page, 'failed-' + name.replace(/[^a-z0-9]+/gi, '-').slice(0, 40)) : null;
    notOk(name, e.stack ? e.stack.split('\n').slice(0, 2).join('\n') : e,
      page ? 'page text: ' + (await viewText(page)) : '', file ? 'screenshot: ' + file : '',
      consoleLines.length ? 'console errors: ' + consoleLines.slice(-5).join(' | ') : '');
  }
}

// Moves to a hash route and waits for an element matching SELECTOR (holding TEXT when
// given) that the previous view did not have: a node of the page left behind cannot
// satisfy the wait.
async function go(page, hash, selector, text) {
  await page.evaluate(() => { for (const e of document.querySelectorAll('*')) e.__stale = true; });
  await page.evaluate((h) => { location.hash = h; }, hash);
  await page.waitForFunction((sel, t) => [...document.querySelectorAll(sel)].some((e) =>
    !e.__stale && (!t || e.textContent.includes(t))), {timeout: WAIT}, selector, text || '');
}

// Waits until the step panel holds every one of TEXTS.
const panelHas = (page, ...texts) => page.waitForFunction((ts) => {
  const p = document.querySelector('#step-panel');
  return p && ts.every((t) => p.textContent.includes(t));
}, {timeout: WAIT}, texts);

async function login(page, key) {
  await page.goto(BASE + '/ui/', {waitUntil: 'domcontentloaded', timeout: WAIT});
  await page.waitForSelector('#login #api-key', {visible: true, timeout: WAIT});
  await page.type('#api-key', key);
  await page.click('#login-submit');
}

// {step: status} of the DAG svg SEL.
const dagStatuses = (page, sel = 'svg#dag') => page.$$eval(`${sel} g.node`, (gs) =>
  Object.fromEntries(gs.map((g) => [g.dataset.step, g.dataset.status])));

async function main() {
  fs.mkdirSync(SHOTS, {recursive: true});

  // The runs the pages are checked against.
  const dag = await run('dag.yaml', {q: 'levels'});
  const retries = await run('retries.yaml', {q: 'retry'});
  // The same seed: the runs differ only by their input, so in step varies.
  const cmpA = await run('compare.yaml', {n: 1}, {seed: 7});
  const cmpB = await run('compare.yaml', {n: 2}, {seed: 7});
  const xssInput = {note: "<img src=x onerror=alert('xss-input')>", end: '</script><script>alert("xss-input-script")</script>'};
  const xss = await run('xss.yaml', xssInput);
  expect('API: the setup runs ended as the manifests make them',
    dag.status === 'failed' && retries.status === 'succeeded' && cmpA.status === 'succeeded' &&
    cmpB.status === 'succeeded' && xss.status === 'succeeded',
    `dag ${dag.status}, retries ${retries.status}, compare ${cmpA.status}/${cmpB.status}, xss ${xss.status}`);
  const att = (retries.steps[0] || {}).attempts || [];
  expect('API: the retries run has two retries and a fallback (4 attempts)',
    att.map((a) => `${a.agent}#${a.attempt}`).join(' ') === 'flaky#1 flaky#2 flaky#3 backup#1',
    JSON.stringify(att.map((a) => [a.agent, a.attempt, a.status])));

  const browser = await puppeteer.launch({
    executablePath: CHROMIUM, headless: true, pipe: true, userDataDir: PROFILE,
    defaultViewport: {width: 1280, height: 800},
    // --no-sandbox: containers (and CI running as root) have no user namespaces for
    // Chromium's sandbox; the browser only ever visits our own loopback server.
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--disable-domain-reliability', '--disable-extensions', '--no-default-browser-check',
      '--no-proxy-server'],
    timeout: WAIT * 2, protocolTimeout: WAIT * 3,
  });
  try {
    const page = await browser.newPage();
    page.setDefaultTimeout(WAIT);
    watch(page, 'operator');

    // ---- login: a wrong key first, then the operator's ----------------------------------
    await step('wrong key: a clear message', page, async () => {
      await login(page, 'not-a-key-of-this-server');
      await page.waitForFunction(() => {
        const e = document.querySelector('#login-error');
        return e && e.textContent.trim().length > 0;
      }, {timeout: WAIT});
      const msg = await page.$eval('#login-error', (e) => e.textContent.trim());
      const visible = await page.$eval('#login-error', (e) => !!(e.offsetWidth || e.offsetHeight || e.getClientRects().length));
      const stored = await page.evaluate(() => Object.keys(sessionStorage).map((k) => sessionStorage.getItem(k)));
      expect('wrong key: #login-error says the key is wrong', /key/i.test(msg) && /wrong|unknown|invalid|refused/i.test(msg) && visible, `message: "${msg}", visible: ${visible}`);
      expect('wrong key: the key is not kept', !stored.includes('not-a-key-of-this-server'), JSON.stringify(stored));
      const navShown = await page.$$eval('a[data-nav]', (as) => as.some((a) => a.offsetWidth > 0 || a.offsetHeight > 0));
      expect('wrong key: no navigation shown', !navShown);
      await shot(page, 'login-wrong-key');
    }, false);

    await step('login with a key', page, async () => {
      await page.$eval('#api-key', (e) => { e.value = ''; });
      await shot(page, 'login');
      await page.type('#api-key', OP_KEY);
      await page.click('#login-submit');
      await page.waitForSelector('a[data-nav=runs]', {visible: true, timeout: WAIT});
      await page.waitForSelector('#runs-table', {timeout: WAIT});
      const navs = await page.$$eval('a[data-nav]', (as) => as.map((a) => a.dataset.nav).sort().join(','));
      expect('login: the navigation links', navs === 'compare,live,manifests,runs,usage', navs);
      const stored = await page.evaluate((k) => Object.keys(sessionStorage).some((n) => sessionStorage.getItem(n) === k), OP_KEY);
      const local = await page.evaluate((k) => Object.keys(localStorage).some((n) => localStorage.getItem(n) === k), OP_KEY);
      expect('login: the key is in sessionStorage, not localStorage', stored && !local, `sessionStorage ${stored}, localStorage ${local}`);
      const loginHidden = await page.$eval('#login', (e) => !(e.offsetWidth || e.offsetHeight));
      expect('login: the form is gone', loginHidden);
      loggedIn = true;
    }, false);

    // ---- runs list ----------------------------------------------------------------------
    await step('runs list shows a run made through the API', page, async () => {
      const row = `#runs-table tr[data-run-id="${xss.run_id}"] td[data-col=status]`;
      await page.waitForSelector(row, {timeout: WAIT});
      for (const [r, want] of [[dag, 'failed'], [retries, 'succeeded'], [xss, 'succeeded']]) {
        const got = await page.$eval(`#runs-table tr[data-run-id="${r.run_id}"] td[data-col=status]`, (e) => e.textContent.trim()).catch((e) => `(no row: ${e.message})`);
        expect(`runs list: run ${r.run_id.slice(0, 8)} shows status ${want}`, got.toLowerCase().includes(want), `status cell: "${got}"`);
      }
      await shot(page, 'runs');
      // A run made now appears without reloading the page.
      const fresh = await run('dag.yaml', {q: 'fresh'});
      await page.waitForSelector(`#runs-table tr[data-run-id="${fresh.run_id}"]`, {timeout: WAIT});
      ok('runs list: a new run appears without reloading');
    });

    // ---- run detail: the DAG --------------------------------------------------------------
    await step('DAG: one node per step with its status text', page, async () => {
      await go(page, `#/runs/${dag.run_id}`, 'svg#dag g.node[data-step="after"]');
      await page.waitForFunction(() => {
        const g = document.querySelector('svg#dag g.node[data-step="check"]');
        return g && g.dataset.status === 'failed';
      }, {timeout: WAIT});
      const nodes = await page.$$eval('svg#dag g.node', (gs) => gs.map((g) => ({step: g.dataset.step, status: g.dataset.status, text: g.textContent})));
      const want = {fetch: 'succeeded', side: 'succeeded', check: 'failed', after: 'skipped'};
      expect('DAG: one node per step', nodes.length === 4 && Object.keys(want).every((s) => nodes.filter((n) => n.step === s).length === 1),
        JSON.stringify(nodes));
      for (const n of nodes) {
        expect(`DAG: step ${n.step} is ${want[n.step]} (data-status and label text)`,
          n.status === want[n.step] && n.text.toLowerCase().includes(want[n.step]), JSON.stringify(n));
      }
      // Laid out by dependency level: fetch above (or left of) its dependents.
      const box = await page.$$eval('svg#dag g.node', (gs) => Object.fromEntries(gs.map((g) => {
        const b = g.getBBox ? g.getBoundingClientRect() : null;
        return [g.dataset.step, b ? {x: b.left, y: b.top} : null];
      })));
      const before = (a, b) => box[a] && box[b] && (box[a].y < box[b].y || box[a].x < box[b].x);
      expect('DAG: laid out by dependency level', before('fetch', 'side') && before('fetch', 'check') && before('check', 'after'), JSON.stringify(box));
      // The step panel of the failed step: its error class and message.
      await page.click('svg#dag g.node[data-step="check"]');
      await panelHas(page, 'bad_request');
      ok('step panel: the failed step shows its error class');
      await shot(page, 'run-dag');
    });

    // ---- timeline -----------------------------------------------------------------------
    await step('timeline: two retries and a fallback show 4 attempt bars', page, async () => {
      await go(page, `#/runs/${retries.run_id}`, 'svg#timeline rect.attempt[data-agent="backup"]');
      const bars = await page.$$eval('svg#timeline rect.attempt', (rs) => rs.map((r) => ({
        step: r.dataset.step, agent: r.dataset.agent, attempt: r.dataset.attempt,
        x: r.getBoundingClientRect().left, w: r.getBoundingClientRect().width})));
      expect('timeline: 4 attempt bars', bars.length === 4, JSON.stringify(bars));
      const seq = bars.map((b) => `${b.agent}#${b.attempt}`).sort().join(' ');
      expect('timeline: flaky #1-3 and the fallback backup #1, all of step call',
        seq === 'backup#1 flaky#1 flaky#2 flaky#3' && bars.every((b) => b.step === 'call'), JSON.stringify(bars));
      const byKey = Object.fromEntries(bars.map((b) => [`${b.agent}#${b.attempt}`, b]));
      const order = ['flaky#1', 'flaky#2', 'flaky#3', 'backup#1'];
      expect('timeline: bars in time order, each after the one before',
        order.every((k, i) => i === 0 || (byKey[k] && byKey[order[i - 1]] && byKey[k].x >= byKey[order[i - 1]].x)), JSON.stringify(bars));
      const st = await dagStatuses(page);
      expect('timeline run: the step answered by its fallback is succeeded', st.call === 'succeeded', JSON.stringify(st));
      await shot(page, 'run-timeline');
    });

    // ---- the same run: keyboard, trace download, replay (the run detail) --------
    await step('run detail: keyboard, trace download, replay', page, async () => {
      // A node takes the focus and Enter opens its step panel.
      const tabbable = await page.$eval('svg#dag g.node[data-step="call"]', (g) => g.tabIndex >= 0);
      expect('keyboard: DAG nodes are focusable', tabbable);
      // Tab from the top of the page reaches it (at most 60 presses).
      await page.$eval('body', (b) => { b.tabIndex = -1; b.focus(); b.removeAttribute('tabindex'); });
      let tabs = 0;
      for (; tabs < 60; tabs++) {
        const at = await page.evaluate(() => {
          const a = document.activeElement;
          return a && a.matches && a.matches('svg#dag g.node') ? a.dataset.step : null;
        });
        if (at === 'call') break;
        await page.keyboard.press('Tab');
      }
      expect('keyboard: Tab reaches the DAG node', tabs < 60, `${tabs} presses`);
      await page.keyboard.press('Enter');
      await panelHas(page, 'backup', 'unavailable');
      ok('keyboard: Enter on a node opens its panel (answered by the fallback, the retried class)');
      // The trace downloads as a file (a Blob URL: nothing leaves the page's origin).
      const dir = path.join(PROFILE, 'downloads');
      fs.mkdirSync(dir, {recursive: true});
      const cdp = await page.createCDPSession();
      await cdp.send('Browser.setDownloadBehavior', {behavior: 'allow', downloadPath: dir, eventsEnabled: true});
      const done = new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no download finished within ${WAIT} ms`)), WAIT);
        cdp.on('Browser.downloadProgress', (e) => {
          if (e.state === 'completed' || e.state === 'canceled') { clearTimeout(t); resolve(e.state); }
        });
      });
      await page.click('button::-p-text(Download trace)');
      const state = await done;
      const files = fs.readdirSync(dir).filter((f) => f.endsWith('.json'));
      let trace = {};
      try { trace = JSON.parse(fs.readFileSync(path.join(dir, files[0]), 'utf8')); } catch (_) { /* below */ }
      expect('trace download: the run\'s trace as a JSON file', state === 'completed' && files.length === 1 &&
        trace.format === 'fluxroute-trace' && trace.run_id === retries.run_id, `${state}, files ${files.join(',')}, format ${trace.format}`);
      await cdp.detach();
      // Replay: the recording matches.
      await page.click('button::-p-text(Replay)');
      await page.waitForFunction(() => /\bidentical\b|\bmatch(ed|es)?\b/i.test(document.body.innerText), {timeout: WAIT});
      ok('replay: the page says the replay matched');
      await shot(page, 'run-replay');
    });

    // ---- compare ------------------------------------------------------------------------
    await step('compare highlights the step that differs', page, async () => {
      await go(page, '#/compare', '#compare-a');
      await page.waitForSelector('#compare-b', {timeout: WAIT});
      await page.type('#compare-a', cmpA.run_id);
      await page.type('#compare-b', cmpB.run_id);
      await page.click('#compare-submit');
      await page.waitForSelector('#compare-result g.node.diff', {timeout: WAIT});
      // Both DAGs drawn; every drawn DAG marks varies, none marks same.
      await page.waitForFunction(() => document.querySelectorAll('#compare-result svg g.node[data-step="same"]').length >= 2, {timeout: WAIT});
      const dags = await page.$$eval('#compare-result svg', (svgs) => svgs.filter((s) => s.querySelector('g.node')).map((s) => ({
        diff: [...s.querySelectorAll('g.node.diff')].map((g) => g.dataset.step).sort(),
        steps: [...s.querySelectorAll('g.node')].map((g) => g.dataset.step).sort()})));
      expect('compare: two DAGs, the differing step (varies) marked in both, the same one not',
        dags.length === 2 && dags.every((d) => d.diff.join() === 'varies' && d.steps.join() === 'same,varies'), JSON.stringify(dags));
      const text = await page.$eval('#compare-result', (e) => e.textContent);
      expect('compare: the differing fields are listed (the input, step varies\' output)',
        text.includes('varies') && /input/.test(text), text.slice(0, 500));
      await shot(page, 'compare');
    });

    // ---- bad content --------------------------------------------------------------------
    await step('XSS: step outputs shown as text, nothing runs', page, async () => {
      await go(page, `#/runs/${xss.run_id}`, 'svg#dag g.node[data-step="evil"]');
      await page.click('svg#dag g.node[data-step="evil"]');
      await panelHas(page, "<img src=x onerror=alert('xss-output')>");
      const panel = await page.$eval('#step-panel', (e) => e.textContent);
      expect('XSS: the </script> output is shown as text', panel.includes("</script><script>alert('xss-script')</script>"), panel.slice(0, 600));
      await shot(page, 'run-xss-output');
      await page.click('svg#dag g.node[data-step="mirror"]');
      await panelHas(page, "<img src=x onerror=alert('xss-input')>");
      ok('XSS: the input echoed by a step is shown as text');
      // The manifest's text (it holds the same strings in a comment) is text too.
      await go(page, '#/manifests/xss.yaml', 'body *', "<img src=x onerror=alert('xss-manifest')>");
      ok('XSS: the manifest text is shown as text');
      await shot(page, 'manifest-xss');
      await go(page, '#/runs', `#runs-table tr[data-run-id="${xss.run_id}"]`);
    });
    await step('XSS: no dialog, no such element', page, async () => {
      const dom = await page.evaluate(() => ({
        imgX: document.querySelectorAll('img[src="x"]').length,
        onerror: document.querySelectorAll('[onerror]').length,
        scripts: document.scripts.length,
      }));
      expect('XSS: the DOM has no <img src=x>, no onerror attribute, no script but the page\'s one',
        dom.imgX === 0 && dom.onerror === 0 && dom.scripts === 1, JSON.stringify(dom));
      expect('XSS: no dialog opened', dialogs.length === 0, dialogs.join('\n'));
    });
    await step('CSP: only the page\'s own script runs', page, async () => {
      // The one script is the server's: its sha256 is the one the CSP names.
      const csp = (await fetch(BASE + '/ui/')).headers.get('content-security-policy') || '';
      const mine = await page.evaluate(async () => {
        const s = document.scripts[0];
        const d = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(s.textContent));
        return {src: s.src, type: s.type, hash: btoa(String.fromCharCode(...new Uint8Array(d)))};
      });
      expect('CSP: the page\'s script is inline and pinned by its sha256',
        !mine.src && csp.includes(`script-src 'sha256-${mine.hash}'`), JSON.stringify(mine), csp);
      // Another inline script, added to the DOM, is refused (and so would be one made of data).
      const ran = await page.evaluate(() => {
        const s = document.createElement('script');
        s.textContent = 'window.__injected = true;';
        document.body.append(s);
        s.remove();
        return window.__injected === true;
      });
      expect('CSP: an inline script added to the page does not run', !ran);
    });
    await step('first load: one document, no script or stylesheet fetched', null, async () => {
      const ctx = await browser.createBrowserContext();
      try {
        const p = await ctx.newPage();
        watch(p, 'first-load');
        await p.evaluateOnNewDocument((k) => sessionStorage.setItem('fluxroute.key', k), OP_KEY);
        await p.goto(BASE + '/ui/#/runs', {waitUntil: 'load', timeout: WAIT});
        await p.waitForSelector(`#runs-table tr[data-run-id="${dag.run_id}"]`, {timeout: WAIT});
        const got = await p.evaluate(() => performance.getEntriesByType('resource').map((r) =>
          `${r.initiatorType} ${new URL(r.name).pathname}`));
        // The runs are asked for once, from the page's <head>: before the document was parsed.
        const runs = await p.evaluate(() => ({
          asked: performance.getEntriesByType('resource').filter((r) => new URL(r.name).pathname === '/v1/runs')
            .map((r) => Math.round(r.startTime)),
          parsed: Math.round(performance.getEntriesByType('navigation')[0].domInteractive)}));
        expect('first load: GET /v1/runs asked once, before the document was parsed',
          runs.asked.length === 1 && runs.asked[0] <= runs.parsed, JSON.stringify(runs));
        const assets = got.filter((r) => /\.(m?js|css)$/.test(r) || /^(script|link|css) /.test(r));
        expect('first load: no .js or .css asset fetched (the modules and styles are in the page)',
          assets.length === 0 && got.every((r) => /^(fetch|img|other) /.test(r)), got.join('\n'));
        expect('first load: the runs list asked GET /v1/runs, and no role probe (DELETE) was sent',
          got.some((r) => r.startsWith('fetch /v1/runs')) && !got.some((r) => /console-role-probe/.test(r)), got.join('\n'));
      } finally {
        await ctx.close();
      }
    });

    // ---- live run -----------------------------------------------------------------------
    await step('live run: steps turn green in order', page, async () => {
      await go(page, '#/live', '#manifest-select option[value="live.yaml"]');
      await page.waitForSelector('#run-button', {visible: true, timeout: WAIT});
      await page.select('#manifest-select', 'live.yaml');
      await page.waitForSelector('svg#dag g.node[data-step="third"]', {timeout: WAIT});
      await page.$eval('#input-editor', (e) => { e.value = '{"topic": "live"}'; });
      // Record every change of the statuses the page shows, with its time.
      await page.evaluate(() => {
        window.__snaps = [];
        const snap = () => {
          const svg = document.querySelector('svg#dag');
          if (!svg) return;
          const m = {};
          for (const g of svg.querySelectorAll('g.node')) m[g.dataset.step] = g.dataset.status;
          const s = JSON.stringify(m);
          const last = window.__snaps[window.__snaps.length - 1];
          if (!last || last.s !== s) window.__snaps.push({s, t: performance.now()});
        };
        snap();
        new MutationObserver(snap).observe(document.body, {subtree: true, childList: true,
          attributes: true, attributeFilter: ['data-status', 'class']});
      });
      await page.click('#run-button');
      // A screenshot while it runs (when the run is not already over).
      await page.waitForFunction(() => {
        const st = (s) => (document.querySelector(`svg#dag g.node[data-step="${s}"]`) || {dataset: {}}).dataset.status;
        return st('second') === 'running' || st('third') === 'succeeded';
      }, {timeout: WAIT});
      await shot(page, 'live-running');
      await page.waitForFunction(() => ['first', 'second', 'third'].every((s) => {
        const g = document.querySelector(`svg#dag g.node[data-step="${s}"]`);
        return g && g.dataset.status === 'succeeded';
      }), {timeout: WAIT});
      const snaps = await page.evaluate(() => window.__snaps.map((x) => ({...JSON.parse(x.s), t: x.t})));
      const firstGreen = (s) => snaps.findIndex((x) => x[s] === 'succeeded');
      const [i1, i2, i3] = ['first', 'second', 'third'].map(firstGreen);
      expect('live run: first, then second, then third turned succeeded, one at a time',
        i1 >= 0 && i1 < i2 && i2 < i3 && snaps[i1].second !== 'succeeded' && snaps[i2].third !== 'succeeded',
        JSON.stringify(snaps));
      expect('live run: a running step is shown while the run proceeds',
        snaps.some((x) => Object.values(x).includes('running')), JSON.stringify(snaps));
      const labels = await page.$$eval('svg#dag g.node', (gs) => gs.map((g) => g.textContent));
      expect('live run: every node is labelled succeeded', labels.length === 3 && labels.every((t) => /succeeded/i.test(t)), JSON.stringify(labels));
      // Green: the node's shape is filled or stroked with a colour whose green channel leads.
      const colours = await page.$$eval('svg#dag g.node', (gs) => gs.map((g) => {
        const shape = g.querySelector('rect, circle, ellipse, path, polygon');
        if (!shape) return null;
        const cs = getComputedStyle(shape);
        return [cs.fill, cs.stroke];
      }));
      const green = (c) => {
        const m = /rgba?\((\d+),\s*(\d+),\s*(\d+)/.exec(c || '');
        return m && Number(m[2]) > Number(m[1]) && Number(m[2]) > Number(m[3]);
      };
      expect('live run: succeeded nodes are green', colours.every((c) => c && (green(c[0]) || green(c[1]))), JSON.stringify(colours));
      await shot(page, 'live-done');
    });

    await step('live run: llm tokens stream in, as text', page, async () => {
      await page.select('#manifest-select', 'chat.yaml');
      await page.waitForSelector('svg#dag g.node[data-step="ask"]', {timeout: WAIT});
      await page.$eval('#input-editor', (e) => { e.value = '{"topic": "<img src=x onerror=alert(\'xss-token\')>"}'; });
      await page.click('#run-button');
      await page.waitForFunction(() => document.body.innerText.includes("mock reply to: Tell me about <img src=x onerror=alert('xss-token')>"), {timeout: WAIT});
      await page.waitForFunction(() => {
        const g = document.querySelector('svg#dag g.node[data-step="ask"]');
        return g && g.dataset.status === 'succeeded';
      }, {timeout: WAIT});
      const imgs = await page.$$eval('img[src="x"], [onerror]', (es) => es.length);
      expect('live run: the streamed reply is shown as text, no element made of it', imgs === 0, `${imgs} elements`);
      await shot(page, 'live-tokens');
    });

    // ---- the other pages: screenshots ---------------------------------------------------
    await step('manifests page', page, async () => {
      await go(page, '#/manifests', 'body *', 'live.yaml');
      await shot(page, 'manifests');
      await go(page, '#/manifests/broken.yaml', 'body *', 'retyr');
      await page.waitForFunction(() => /\bline\s*\d+|\d+:\d+/i.test(document.body.textContent), {timeout: WAIT});
      ok('manifests: a validation error is shown with its line');
      await shot(page, 'manifest-errors');
    });
    await step('usage page', page, async () => {
      await go(page, '#/usage', '#usage');
      await page.waitForFunction(() => document.querySelector('#usage').textContent.trim().length > 0, {timeout: WAIT});
      ok('usage: #usage says something (no control plane here: why there is no usage)');
      await shot(page, 'usage');
    });
    await step('narrow screen', page, async () => {
      await page.setViewport({width: 390, height: 844, isMobile: true, hasTouch: true});
      await go(page, '#/runs', `#runs-table tr[data-run-id="${dag.run_id}"]`);
      await shot(page, 'narrow-runs');
      await go(page, `#/runs/${retries.run_id}`, 'svg#timeline rect.attempt[data-agent="backup"]');
      await shot(page, 'narrow-run');
      const wide = await page.evaluate(() => document.documentElement.scrollWidth);
      expect('narrow screen: the page itself does not scroll sideways', wide <= 390 + 1, `scrollWidth ${wide}`);
      await page.setViewport({width: 1280, height: 800});
    });
    await page.close();

    // ---- a viewer key -------------------------------------------------------------------
    const ctx = await browser.createBrowserContext();
    const vpage = await ctx.newPage();
    vpage.setDefaultTimeout(WAIT);
    watch(vpage, 'viewer');
    await step('viewer key: no run button, the API refuses its run', vpage, async () => {
      await login(vpage, VIEWER_KEY);
      await vpage.waitForSelector('a[data-nav=runs]', {visible: true, timeout: WAIT});
      await vpage.waitForSelector(`#runs-table tr[data-run-id="${dag.run_id}"]`, {timeout: WAIT});
      ok('viewer: sees its tenant\'s runs');
      await go(vpage, '#/live', '#manifest-select option[value="live.yaml"]');
      await vpage.waitForSelector('#input-editor', {timeout: WAIT});
      expect('viewer: no #run-button', (await vpage.$('#run-button')) === null);
      await shot(vpage, 'viewer-live');
      // The API refuses anyway: the same request the page would send, from the page.
      const r = await vpage.evaluate(async () => {
        const key = Object.keys(sessionStorage).map((k) => sessionStorage.getItem(k))[0];
        const res = await fetch('/v1/run', {method: 'POST', headers: {Authorization: 'Bearer ' + key,
          'Content-Type': 'application/json'}, body: JSON.stringify({manifest: 'live.yaml'})});
        return {status: res.status, body: await res.text()};
      });
      expect('viewer: POST /v1/run with its key is refused (403)', r.status === 403, JSON.stringify(r));
    }, false);
    await ctx.close();
  } finally {
    await browser.close();
  }

  expect('the pages asked nothing of another origin', foreign.length === 0, foreign.join('\n'));
  expect('no request carried a key in its URL', keyInUrl.length === 0, keyInUrl.join('\n'));
  expect('no uncaught error in the pages', pageErrors.length === 0, pageErrors.join('\n'));
  expect('no dialog opened on any page', dialogs.length === 0, dialogs.join('\n'));
  const shots = fs.readdirSync(SHOTS).filter((f) => f.endsWith('.png'));
  console.log(`# ${shots.length} screenshots in ${SHOTS}`);
}

main().catch((e) => notOk('the browser test ran to its end', e.stack || e)).finally(() => {
  clearTimeout(watchdog);
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
});
