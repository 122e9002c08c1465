// The console's entry: the key, the navigation and the hash routes
// (#/runs, #/runs/ID, #/live, #/compare, #/manifests, #/usage).
import {api, getKey, setKey, clearKey, whenUnauthorized, mayRun} from './api.js';
import {clear, errorBox} from './ui.js';

const $ = (id) => document.getElementById(id);
const state = {mayRun: null, stop: null};

const pages = {
  runs: () => import('./runs.js').then((m) => m.runsPage),
  run: () => import('./run.js').then((m) => m.runPage),
  live: () => import('./live.js').then((m) => m.livePage),
  compare: () => import('./compare.js').then((m) => m.comparePage),
  manifests: () => import('./manifests.js').then((m) => m.manifestsPage),
  usage: () => import('./usage.js').then((m) => m.usagePage),
};

function parseHash() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  if (parts[0] === 'runs' && parts[1]) return {page: 'run', nav: 'runs', arg: parts[1]};
  if (parts[0] === 'manifests' && parts[1]) return {page: 'manifests', nav: 'manifests', arg: parts[1]};
  if (pages[parts[0]]) return {page: parts[0], nav: parts[0], arg: null};
  return {page: 'runs', nav: 'runs', arg: null};
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
  // The role probe and the page's module load in parallel; only the pages with a run or
  // cancel button wait for the probe's answer.
  if (state.mayRun === null) state.mayRun = mayRun();
  const needs = r.page === 'live' || r.page === 'run';
  try {
    const [page, may] = await Promise.all([pages[r.page](), needs ? state.mayRun : null]);
    if (needs) state.mayRun = may;
    const ctx = {view, arg: r.arg, mayRun: may, onStop: (f) => { state.stop = f; }};
    await page(ctx);
  } catch (e) {
    if (e && e.status === 401) return;
    view.append(errorBox(e, 'This page failed'));
  }
  document.title = `FluxRoute — ${r.nav}`;
  // The first page drawn with its data: what `make bench` times (tests/bench_console.mjs).
  if (!performance.getEntriesByName('fluxroute-ready').length) performance.mark('fluxroute-ready');
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
    await api('GET', '/v1/runs?limit=1', undefined, {quiet401: true});
    state.mayRun = null;
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

$('login').addEventListener('submit', login);
$('logout').addEventListener('click', () => {
  clearKey();
  state.mayRun = null;
  showLogin('Signed out.');
});
window.addEventListener('hashchange', route);
route();
