// Usage: the tenant's usage this month and its current invoice (GET /v1/usage, which
// serve fetches from the control plane with the caller's identity).
import {api} from './api.js';
import {h, jsonView, errorBox, section} from './ui.js';

function money(micros, currency) {
  if (typeof micros !== 'number') return null;
  return `${(micros / 1e6).toFixed(2)} ${currency || ''}`.trim();
}

// Scalars of an object as a definition list; objects and arrays as foldable JSON.
function facts(o) {
  const dl = h('dl', {class: 'facts'});
  const rest = {};
  for (const [k, v] of Object.entries(o || {})) {
    if (v !== null && typeof v === 'object') { rest[k] = v; continue; }
    const m = /_micros$/.test(k) ? money(v, o.currency) : null;
    dl.append(h('dt', {text: k.replace(/_/g, ' ')}), h('dd', {text: m ? `${m} (${v} micros)` : String(v)}));
  }
  return [dl, Object.keys(rest).length ? jsonView(rest, 2) : null];
}

export async function usagePage(ctx) {
  const box = h('div', {id: 'usage'});
  ctx.view.append(h('h1', {text: 'Usage'}), box);
  let u;
  try {
    u = await api('GET', '/v1/usage');
  } catch (e) {
    box.append(e.status === 503
      ? h('p', {class: 'error', role: 'alert',
        text: `Usage is not available here: ${e.message}`})
      : errorBox(e, 'Cannot read usage'));
    return;
  }
  const usage = u.usage !== undefined ? u.usage : u;
  const invoice = u.invoice ?? null;
  const who = [u.tenant_id && 'tenant ' + u.tenant_id, u.period].filter(Boolean).join(', ');
  box.append(section(`Usage this month${who ? ' (' + who + ')' : ''}`, facts(usage)));
  if (invoice) box.append(section('Current invoice', facts(invoice)));
  else if (u.invoice_error) box.append(section('Current invoice', h('p', {class: 'error', text: String(u.invoice_error.message ?? u.invoice_error)})));
}
