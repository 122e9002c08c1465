// Runs: the tenant's runs (GET /v1/runs), filtered by status and manifest, a page at a
// time (next_cursor), refreshed every few seconds while the first page is shown.
import {api} from './api.js';
import {h, clear, badge, fmtTime, duration, errorBox} from './ui.js';

const STATUSES = ['', 'queued', 'running', 'succeeded', 'failed', 'cancelled'];
const REFRESH_MS = 3000;

// The filters of the hash (#/runs?status=&manifest=) and the page size.
export function runsFilter() {
  const q = new URLSearchParams(location.hash.split('?')[1] || '');
  return {status: q.get('status') || '', manifest: q.get('manifest') || '', limit: 25};
}

// GET /v1/runs's path for filter f from cursor (null: the first page).
export function runsPath(f, cursor) {
  const p = new URLSearchParams({limit: String(f.limit)});
  if (f.status) p.set('status', f.status);
  if (f.manifest) p.set('manifest', f.manifest);
  if (cursor) p.set('cursor', cursor);
  return '/v1/runs?' + p;
}

export async function runsPage(ctx) {
  const f = runsFilter();
  const cursors = [null]; // cursors[i]: the cursor of page i
  let page = 0, timer = null, seen = new Set(), first = true, last = null;

  const status = h('select', {id: 'filter-status', name: 'status'},
    STATUSES.map((x) => h('option', {value: x, selected: x === f.status, text: x || 'any status'})));
  const manifest = h('input', {id: 'filter-manifest', name: 'manifest', type: 'search',
    placeholder: 'manifest name', value: f.manifest});
  const live = h('input', {id: 'live-refresh', type: 'checkbox', checked: true});
  const form = h('form', {class: 'filters', role: 'search', 'aria-label': 'Filter runs'},
    h('label', {}, 'Status ', status), h('label', {}, 'Manifest ', manifest),
    h('button', {type: 'submit', text: 'Filter'}),
    h('label', {class: 'check'}, live, ' refresh every 3 s'));
  const body = h('tbody');
  const table = h('table', {id: 'runs-table', class: 'runs'},
    h('caption', {class: 'sr-only', text: 'Runs, newest first'}),
    h('thead', {}, h('tr', {}, ['Status', 'Manifest', 'Started (UTC)', 'Duration', 'Run id']
      .map((t) => h('th', {scope: 'col', text: t})))), body);
  const prev = h('button', {type: 'button', id: 'runs-prev', text: '← Newer', disabled: true});
  const next = h('button', {type: 'button', id: 'runs-next', text: 'Older →', disabled: true});
  const info = h('span', {class: 'muted', id: 'runs-page'});
  const msg = h('div');
  ctx.view.append(h('h1', {text: 'Runs'}), form, msg, h('div', {class: 'scroll'}, table),
    h('div', {class: 'pager'}, prev, info, next));

  async function load() {
    let data;
    try {
      data = await api('GET', runsPath(f, cursors[page]));
    } catch (e) {
      clear(msg).append(errorBox(e, 'Cannot list runs'));
      return;
    }
    clear(msg);
    cursors[page + 1] = data.next_cursor;
    // A refresh that changes nothing leaves the table (and the keyboard focus) alone.
    const sig = JSON.stringify(data);
    if (sig === last && data.runs.every((r) => r.finished_at)) return;
    last = sig;
    const focused = document.activeElement && document.activeElement.closest &&
      document.activeElement.closest('tr[data-run-id]');
    const focusId = focused ? focused.dataset.runId : null;
    clear(body);
    if (!data.runs.length)
      body.append(h('tr', {class: 'empty'}, h('td', {colspan: 5, text: 'No runs match.'})));
    for (const r of data.runs) {
      const fresh = !first && !seen.has(r.run_id);
      seen.add(r.run_id);
      body.append(h('tr', {dataset: {runId: r.run_id}, class: fresh ? 'fresh' : null},
        h('td', {dataset: {col: 'status'}}, badge(r.status)),
        h('td', {dataset: {col: 'manifest'}, text: r.manifest ?? '(inline)'}),
        h('td', {dataset: {col: 'started'}, text: fmtTime(r.started_at)}),
        h('td', {dataset: {col: 'duration'}, text: duration(r.started_at, r.finished_at)}),
        h('td', {dataset: {col: 'run'}}, h('a', {href: '#/runs/' + encodeURIComponent(r.run_id),
          class: 'mono', text: r.run_id}))));
    }
    first = false;
    if (focusId) {
      const row = [...body.querySelectorAll('tr[data-run-id]')].find((r) => r.dataset.runId === focusId);
      if (row) row.querySelector('a').focus();
    }
    prev.disabled = page === 0;
    next.disabled = !data.next_cursor;
    info.textContent = `page ${page + 1}`;
  }

  function schedule() {
    clearTimeout(timer);
    if (live.checked && page === 0)
      timer = setTimeout(async () => {
        if (!document.hidden) await load();
        schedule();
      }, REFRESH_MS);
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    f.status = status.value;
    f.manifest = manifest.value.trim();
    cursors.length = 1;
    page = 0;
    first = true;
    seen = new Set();
    last = null;
    load().then(schedule);
  });
  status.addEventListener('change', () => form.requestSubmit());
  live.addEventListener('change', schedule);
  prev.addEventListener('click', () => { page = Math.max(0, page - 1); last = null; load().then(schedule); });
  next.addEventListener('click', () => { if (cursors[page + 1]) { page++; last = null; load().then(schedule); } });
  ctx.onStop(() => clearTimeout(timer));
  await load();
  schedule();
}
