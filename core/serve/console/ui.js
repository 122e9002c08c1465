// DOM helpers.  Everything that comes from a run, a manifest or the server is put into
// the page with textContent or setAttribute, never parsed as HTML.
const SVG_NS = 'http://www.w3.org/2000/svg';

function fill(el, attrs, kids) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'text') el.textContent = String(v);
    else if (k === 'class') el.setAttribute('class', Array.isArray(v) ? v.filter(Boolean).join(' ') : v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') for (const [dk, dv] of Object.entries(v)) el.dataset[dk] = String(dv);
    else if (k === 'hidden' || k === 'disabled' || k === 'checked' || k === 'selected') el[k] = !!v;
    else if (k === 'value') el.value = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of kids.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// h('tag', {attrs}, ...children): an HTML element; strings become text nodes.
export function h(tag, attrs, ...kids) {
  return fill(document.createElement(tag), attrs, kids);
}

// s('tag', {attrs}, ...children): an SVG element.
export function s(tag, attrs, ...kids) {
  return fill(document.createElementNS(SVG_NS, tag), attrs, kids);
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

// Statuses are told apart by a symbol and a word, not by colour alone.
const SYMBOLS = {
  succeeded: '✓', failed: '✗', skipped: '↷', running: '▶', cancelled: '⊘',
  queued: '…', pending: '○', cancelling: '⊘', identical: '=', differs: '≠',
};
export function symbol(status) {
  return SYMBOLS[status] || '•';
}
export function statusClass(status) {
  return 'st-' + (SYMBOLS[status] ? status : 'other');
}
export function badge(status) {
  return h('span', {class: ['badge', statusClass(status)]},
    h('span', {class: 'sym', 'aria-hidden': 'true', text: symbol(status)}), ' ' + status);
}

export function fmtTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (isNaN(d)) return String(iso);
  return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

export function fmtUs(us) {
  if (typeof us !== 'number' || !isFinite(us)) return '—';
  if (us < 1000) return us + ' µs';
  if (us < 1e6) return (us / 1000).toFixed(us < 1e4 ? 2 : 1) + ' ms';
  if (us < 6e7) return (us / 1e6).toFixed(2) + ' s';
  return Math.floor(us / 6e7) + ' min ' + Math.round((us % 6e7) / 1e6) + ' s';
}

export function duration(startIso, endIso) {
  if (!startIso) return '—';
  const a = Date.parse(startIso), b = endIso ? Date.parse(endIso) : Date.now();
  if (isNaN(a) || isNaN(b)) return '—';
  return fmtUs(Math.max(0, b - a) * 1000) + (endIso ? '' : ' (so far)');
}

// A foldable view of a JSON value: objects and arrays are <details> (open to `depth`
// levels), leaves are text.  Strings are shown quoted, as text.
export function jsonView(value, depth = 2) {
  const wrap = h('div', {class: 'json'});
  wrap.append(node(value, depth, null));
  return wrap;
}

function leaf(v) {
  const t = v === null ? 'null' : typeof v;
  return h('span', {class: 'j-' + t, text: t === 'string' ? JSON.stringify(v) : String(v)});
}

function node(v, depth, key) {
  const label = key === null ? [] : [h('span', {class: 'j-key', text: key}), ': '];
  if (v === null || typeof v !== 'object') return h('div', {class: 'j-row'}, label, leaf(v));
  const arr = Array.isArray(v);
  const entries = arr ? v.map((x, i) => [String(i), x]) : Object.entries(v);
  if (!entries.length) return h('div', {class: 'j-row'}, label, arr ? '[]' : '{}');
  const d = h('details', {class: 'j-node', open: depth > 0});
  d.append(h('summary', {}, label, h('span', {class: 'j-sum',
    text: arr ? `[${entries.length} item${entries.length > 1 ? 's' : ''}]` : `{${entries.length} field${entries.length > 1 ? 's' : ''}}`})));
  const body = h('div', {class: 'j-body'});
  for (const [k, x] of entries) body.append(node(x, depth - 1, k));
  d.append(body);
  return d;
}

export function errorBox(err, what) {
  const msg = err && err.status
    ? `${what ? what + ': ' : ''}${err.message} (HTTP ${err.status} ${err.code})`
    : `${what ? what + ': ' : ''}${err && err.message ? err.message : err}`;
  return h('p', {class: 'error', role: 'alert', text: msg});
}

export function section(title, ...kids) {
  return h('section', {class: 'card'}, h('h2', {text: title}), ...kids);
}
