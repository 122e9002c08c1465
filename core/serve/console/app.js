// The console's entry: the key, the navigation and the hash routes
// (#/runs, #/runs/ID, #/live, #/compare, #/manifests, #/usage).  Served bundled with the
// other modules into one inline script in the page's <head> (core/serve/console_embed.sh),
// so every import here is static (the first load fetches no script), and this runs
// before the body is parsed: boot.js (imported first, so evaluated first) has asked for
// the runs list already; the page is drawn once the document is there.
import {parseHash} from './boot.js';
import {api, getKey, setKey, clearKey, whenUnauthorized, whoami} from './api.js';
import {h, clear, errorBox} from './ui.js';
import {runsPage} from './runs.js';
import {runPage} from './run.js';
import {livePage} from './live.js';
import {comparePage} from './compare.js';
import {manifestsPage} from './manifests.js';
import {usagePage} from './usage.js';

const $ = (id) => document.getElementById(id);
// who: whether the key may start runs (a promise), asked once per key, or null.
const state = {who: null, stop: null};

const pages = {
  runs: runsPage, run: runPage, live: livePage, compare: comparePage,
  manifests: manifestsPage, usage: usagePage,
};

// GET /v1/whoami, once per key: whether it may start runs (false when the server does not
// answer: no run button unless it says so; asked again on the next page then).
function mayRun() {
  if (!state.who)
    state.who = whoami().then((w) => !!(w && w.may && w.may.run), () => { state.who = null; return false; });
  return state.who;
}

function showLogin(message) {
  if (state.stop) state.stop();
  state.stop = null;
  $('nav').hidden = true;
  $('logout').hidden = true;
  clear($('view'));
  $('login-view').hidden = false;
  $('login-error').textContent = message || '';
  $('api-key').value = '';
  $('api-key').focus();
}

async function route() {
  if (!getKey()) return showLogin();
  $('login-view').hidden = true;
  $('nav').hidden = false;
  $('logout').hidden = false;
  const r = parseHash();
  for (const a of document.querySelectorAll('a[data-nav]')) {
    if (a.dataset.nav === r.nav) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  if (state.stop) state.stop();
  state.stop = null;
  const view = clear($('view'));
  // Only the pages with a run or cancel button wait for GET /v1/whoami; on the others it
  // is asked for once the page is drawn.
  const needs = r.page === 'live' || r.page === 'run';
  try {
    const may = needs ? await mayRun() : null;
    const ctx = {view, arg: r.arg, mayRun: may, onStop: (f) => { state.stop = f; }};
    await pages[r.page](ctx);
  } catch (e) {
    if (e && e.status === 401) return;
    view.append(errorBox(e, 'This page failed'));
  }
  document.title = `FluxRoute — ${r.nav}`;
  // The first page drawn with its data: what `make bench` times (tests/bench_console.mjs).
  if (!performance.getEntriesByName('fluxroute-ready').length) {
    performance.mark('fluxroute-ready');
    mayRun(); // asked now, off the first page's path, ready for the pages that need it
    // The tab's icon only now: an SVG icon is a whole SVG document for the browser to make,
    // and the first page is drawn sooner without it.
    document.head.append(h('link', {rel: 'icon', href: '/ui/icon.svg', type: 'image/svg+xml'}));
  }
}

async function login(ev) {
  ev.preventDefault();
  const k = $('api-key').value.trim();
  const err = $('login-error');
  if (!k) {
    err.textContent = 'Paste an API key first.';
    return;
  }
  $('login-submit').disabled = true;
  err.textContent = '';
  setKey(k);
  try {
    state.who = null;
    await api('GET', '/v1/runs?limit=1', undefined, {quiet401: true});
    if (!location.hash || location.hash === '#' || location.hash === '#/') location.hash = '#/runs';
    else route();
    $('main').focus();
  } catch (e) {
    clearKey();
    err.textContent = e.status === 401
      ? `Wrong API key: the server does not know this key (${e.message}).`
      : e.status === 403
        ? `This key may not use the console: ${e.message}`
        : `Cannot sign in: ${e.message}${e.status ? ` (HTTP ${e.status})` : ''}`;
  } finally {
    $('login-submit').disabled = false;
  }
}

whenUnauthorized((e) => {
  clearKey();
  showLogin(`Your key was refused (${e.message}); sign in again.`);
});

function start() {
  $('login').addEventListener('submit', login);
  $('logout').addEventListener('click', () => {
    clearKey();
    state.who = null;
    showLogin('Signed out.');
  });
  window.addEventListener('hashchange', route);
  route();
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
else start();
