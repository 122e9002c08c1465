// Manifests: the tenant's manifests (GET /v1/manifests), each with its graph and its text,
// validation errors shown at their line and column.
import {api} from './api.js';
import {h, clear, errorBox, section, badge} from './ui.js';
import {normalizeGraph, renderDag} from './dag.js';
import {listManifests} from './live.js';

export async function manifestsPage(ctx) {
  const list = h('ul', {class: 'manifest-list', id: 'manifest-list'});
  const detail = h('div', {id: 'manifest-detail'});
  ctx.view.append(h('h1', {text: 'Manifests'}), h('div', {class: 'manifests-layout'},
    section('Manifests', list), h('div', {class: 'main-col'}, detail)));
  let items;
  try {
    items = await listManifests();
  } catch (e) {
    list.append(h('li', {}, errorBox(e, 'Cannot list manifests')));
    return;
  }
  if (!items.length) list.append(h('li', {class: 'muted', text: 'No manifests in this namespace.'}));
  for (const m of items) {
    const bad = m.valid === false || (Array.isArray(m.errors) && m.errors.length > 0);
    list.append(h('li', {dataset: {manifest: m.name}},
      h('a', {href: '#/manifests/' + encodeURIComponent(m.name), 'aria-current': ctx.arg === m.name ? 'page' : null, text: m.name}),
      bad ? [' ', badge('failed')] : null));
  }
  const name = ctx.arg || (items[0] && items[0].name);
  if (name) await show(name, detail);
}

async function show(name, box) {
  let m;
  try {
    m = await api('GET', '/v1/manifests/' + encodeURIComponent(name));
  } catch (e) {
    box.append(errorBox(e, `Cannot read ${name}`));
    return;
  }
  const errors = (m.errors || []).filter(Boolean);
  const graph = normalizeGraph(m.graph);
  box.append(h('h2', {}, h('span', {class: 'mono', text: name}), ' ',
    errors.length ? badge('failed') : badge('succeeded'), errors.length ? ' invalid' : ' valid'));
  if (errors.length)
    box.append(section('Errors', h('ul', {class: 'errors', id: 'manifest-errors'}, errors.map((e) => h('li', {},
      e.line ? h('a', {href: '#', class: 'mono', dataset: {line: e.line}, text: `${name}:${e.line}:${e.col ?? 1}`,
        onclick: (ev) => { ev.preventDefault(); focusLine(e.line); }}) : h('span', {class: 'mono', text: e.code || 'error'}),
      ' ', h('span', {text: e.message ?? ''}))))));
  if (graph.nodes.length)
    box.append(section('Graph', h('div', {class: 'scroll'}, renderDag(graph, {id: 'manifest-dag', statuses: new Map(graph.nodes.map((n) => [n.id, 'pending'])), label: 'The manifest\'s steps by dependency level'}))));
  box.append(section('Text', source(m.text || '', errors)));
}

// The text with line numbers; a line with an error is marked (✗ and a caret under its
// column) and carries the message.
function source(text, errors) {
  const byLine = new Map();
  for (const e of errors) if (e.line) (byLine.get(e.line) || byLine.set(e.line, []).get(e.line)).push(e);
  const ol = h('ol', {class: 'source', id: 'manifest-text'});
  text.replace(/\n$/, '').split('\n').forEach((line, i) => {
    const errs = byLine.get(i + 1);
    const li = h('li', {id: 'L' + (i + 1), class: errs ? 'has-error' : null, tabindex: errs ? -1 : null},
      h('code', {text: line || ' '}));
    for (const e of errs || []) {
      const col = Math.max(1, e.col || 1);
      li.append(h('div', {class: 'caret', role: 'note'},
        h('code', {'aria-hidden': 'true', text: ' '.repeat(col - 1) + '^'}),
        h('span', {class: 'msg', text: ` ✗ ${e.line}:${col} ${e.message ?? ''}`})));
    }
    ol.append(li);
  });
  return h('div', {class: 'scroll'}, ol);
}

function focusLine(n) {
  const li = document.getElementById('L' + n);
  if (li) {
    li.scrollIntoView({block: 'center'});
    li.focus();
  }
}
