// The DAG and the attempt timeline, drawn as SVG.  Labels are text nodes; every node
// carries its status as a word and a symbol, the colour only repeats it.
import {s, symbol, statusClass, fmtUs} from './ui.js';

// {nodes: [{id, agent}], edges: [[from, to]]} from what the server gives
// (GET /v1/manifests/{name}'s graph), whatever the exact member names.
export function normalizeGraph(g) {
  const nodes = [], edges = [];
  if (!g) return {nodes, edges};
  for (const n of g.nodes || []) {
    if (typeof n === 'string') nodes.push({id: n});
    else if (n) nodes.push({id: String(n.id ?? n.step ?? n.name), agent: n.agent});
  }
  for (const e of g.edges || []) {
    if (Array.isArray(e)) edges.push([String(e[0]), String(e[1])]);
    else if (e) edges.push([String(e.from ?? e.source ?? e.after), String(e.to ?? e.target ?? e.step)]);
  }
  if (!edges.length)
    for (const n of g.nodes || [])
      for (const d of (n && n.depends_on) || []) edges.push([String(d), String(n.id ?? n.step)]);
  return {nodes, edges};
}

// The graph read from a manifest's text (a trace embeds it) when the server gives none:
// the `pipeline:` entries' `step` and `depends_on`, in flow or block style.  Only what the
// drawing needs; the server validated the manifest.
export function graphFromManifest(text) {
  const nodes = [], edges = [];
  if (typeof text !== 'string') return {nodes, edges};
  const lines = text.split('\n');
  let inPipe = false, cur = null, listDeps = false, itemIndent = -1;
  const unq = (v) => v.trim().replace(/^["']|["']$/g, '');
  const deps = (v) => {
    v = v.trim();
    if (v.startsWith('[')) return v.replace(/[[\]]/g, '').split(',').map(unq).filter(Boolean);
    return v ? [unq(v)] : [];
  };
  const flush = () => {
    if (cur && cur.id) {
      nodes.push({id: cur.id, agent: cur.agent});
      for (const d of cur.deps) edges.push([d, cur.id]);
    }
    cur = null;
  };
  for (const raw of lines) {
    const line = raw.replace(/\s+#.*$/, '');
    if (!line.trim()) continue;
    const indent = line.search(/\S/);
    if (indent === 0) {
      flush();
      inPipe = /^pipeline\s*:/.test(line);
      continue;
    }
    if (!inPipe) continue;
    let body = line.trim();
    if (body.startsWith('- ') && (itemIndent < 0 || indent <= itemIndent)) {
      itemIndent = indent;
      flush();
      cur = {id: null, agent: null, deps: []};
      listDeps = false;
      body = body.slice(2).trim();
      if (body.startsWith('{')) {
        const inner = body.replace(/^\{|\}$/g, '');
        const m = /depends_on\s*:\s*(\[[^\]]*\]|[^,]+)/.exec(inner);
        if (m) cur.deps = deps(m[1]);
        const st = /(?:^|,)\s*step\s*:\s*([^,}]+)/.exec(inner);
        if (st) cur.id = unq(st[1]);
        const ag = /(?:^|,)\s*agent\s*:\s*([^,}]+)/.exec(inner);
        if (ag) cur.agent = unq(ag[1]);
        continue;
      }
    }
    if (!cur) continue;
    if (listDeps && body.startsWith('- ')) {
      cur.deps.push(unq(body.slice(2)));
      continue;
    }
    const kv = /^([a-z_]+)\s*:\s*(.*)$/.exec(body);
    if (!kv) continue;
    listDeps = false;
    if (kv[1] === 'step') cur.id = unq(kv[2]);
    else if (kv[1] === 'agent') cur.agent = unq(kv[2]);
    else if (kv[1] === 'depends_on') {
      if (kv[2].trim()) cur.deps = deps(kv[2]);
      else listDeps = true;
    }
  }
  flush();
  return {nodes, edges};
}

// Adds the report's steps the graph lacks (a graph-less run still gets its nodes).
export function withSteps(graph, steps) {
  const have = new Set(graph.nodes.map((n) => n.id));
  for (const st of steps || []) if (!have.has(st.step)) graph.nodes.push({id: st.step, agent: st.agent});
  return graph;
}

// Each node's level: 0 for roots, else one more than its deepest dependency.
export function levels(graph) {
  const deps = new Map(graph.nodes.map((n) => [n.id, []]));
  for (const [a, b] of graph.edges) if (deps.has(a) && deps.has(b)) deps.get(b).push(a);
  const lvl = new Map();
  const visit = (id, seen) => {
    if (lvl.has(id)) return lvl.get(id);
    if (seen.has(id)) return 0; // a cycle: the server refuses those; draw something anyway
    seen.add(id);
    let l = 0;
    for (const d of deps.get(id) || []) l = Math.max(l, visit(d, seen) + 1);
    lvl.set(id, l);
    return l;
  };
  for (const n of graph.nodes) visit(n.id, new Set());
  return lvl;
}

const NW = 168, NH = 54, GX = 56, GY = 18, PAD = 12;

// svg.dag: one g.node[data-step][data-status] per step, levels left to right.
// opts: {id, statuses: Map step → status, diff: Set of steps, onSelect(step), label}
export function renderDag(graph, opts = {}) {
  const lvl = levels(graph);
  const cols = [];
  for (const n of graph.nodes) (cols[lvl.get(n.id)] ||= []).push(n);
  const pos = new Map();
  let rows = 0;
  cols.forEach((col, x) => {
    col.forEach((n, y) => pos.set(n.id, {x: PAD + x * (NW + GX), y: PAD + y * (NH + GY)}));
    rows = Math.max(rows, col.length);
  });
  const W = PAD * 2 + Math.max(1, cols.length) * (NW + GX) - GX;
  const H = PAD * 2 + Math.max(1, rows) * (NH + GY) - GY;
  const mk = (opts.id || 'dag') + '-arrow';
  const svg = s('svg', {id: opts.id || 'dag', class: 'dag', viewBox: `0 0 ${W} ${H}`, width: W, height: H,
    role: 'group', 'aria-label': opts.label || 'Steps of the run, by dependency level'});
  svg.append(s('defs', {}, s('marker', {id: mk, viewBox: '0 0 10 10', refX: 10, refY: 5,
    markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse'}, s('path', {d: 'M0 0L10 5L0 10z', class: 'arrowhead'}))));
  for (const [a, b] of graph.edges) {
    const p = pos.get(a), q = pos.get(b);
    if (!p || !q) continue;
    const x1 = p.x + NW, y1 = p.y + NH / 2, x2 = q.x, y2 = q.y + NH / 2, mx = (x1 + x2) / 2;
    svg.append(s('path', {class: 'edge', d: `M${x1} ${y1}C${mx} ${y1} ${mx} ${y2} ${x2} ${y2}`,
      'marker-end': `url(#${mk})`, dataset: {from: a, to: b}}));
  }
  for (const n of graph.nodes) {
    const st = (opts.statuses && opts.statuses.get(n.id)) || 'pending';
    const {x, y} = pos.get(n.id);
    const diff = opts.diff && opts.diff.has(n.id);
    const g = s('g', {class: ['node', statusClass(st), diff && 'diff'], transform: `translate(${x} ${y})`,
      dataset: {step: n.id, status: st}, tabindex: opts.onSelect ? 0 : undefined,
      role: opts.onSelect ? 'button' : 'img',
      'aria-label': `step ${n.id}: ${st}${diff ? ', differs' : ''}`});
    g.append(s('title', {text: `${n.id}${n.agent ? ' (agent ' + n.agent + ')' : ''}: ${st}${diff ? ' — differs' : ''}`}));
    g.append(s('rect', {class: 'box', width: NW, height: NH, rx: 7}));
    g.append(s('text', {class: 'label', x: 10, y: 21, text: clip(n.id, 20)}));
    g.append(s('text', {class: 'status', x: 10, y: 42, text: `${symbol(st)} ${st}`}));
    if (diff) g.append(s('text', {class: 'diff-mark', x: NW - 8, y: 42, 'text-anchor': 'end', text: '≠ differs'}));
    if (opts.onSelect) {
      const pick = () => opts.onSelect(n.id);
      g.addEventListener('click', pick);
      g.addEventListener('keydown', (e) => {
        if (e.key === 'Enter' || e.key === ' ') {
          e.preventDefault();
          pick();
        }
      });
    }
    svg.append(g);
  }
  return svg;
}

// Updates one node's status in place (live runs).
export function setNodeStatus(svg, step, st) {
  const g = [...svg.querySelectorAll('g.node')].find((x) => x.dataset.step === step);
  if (!g) return;
  g.dataset.status = st;
  g.setAttribute('class', ['node', statusClass(st), g.classList.contains('diff') && 'diff'].filter(Boolean).join(' '));
  g.setAttribute('aria-label', `step ${step}: ${st}`);
  g.querySelector('text.status').textContent = `${symbol(st)} ${st}`;
  g.querySelector('title').textContent = `${step}: ${st}`;
}

function clip(t, n) {
  t = String(t);
  return t.length > n ? t.slice(0, n - 1) + '…' : t;
}

// Tokens an attempt's provider calls reported (trace effects), or null.
export function attemptTokens(a) {
  let total = null;
  for (const e of a.effects || []) {
    if (e.kind !== 'provider' || !e.response || !e.response.usage) continue;
    const u = e.response.usage;
    for (const [k, v] of Object.entries(u)) if (/tokens$/.test(k) && !/total/.test(k) && typeof v === 'number') total = (total || 0) + v;
  }
  return total;
}

function providerCalls(a) {
  return (a.effects || []).filter((e) => e.kind === 'provider').length;
}

// Positions of every attempt: its started_us when the report has it (offset from the
// run's start), else an estimate (after the step's dependencies, attempts back to back
// with their backoff).
export function attemptSpans(steps, graph) {
  const deps = new Map();
  for (const [a, b] of (graph && graph.edges) || []) (deps.get(b) || deps.set(b, []).get(b)).push(a);
  const end = new Map(), spans = [];
  for (const st of steps || []) {
    let t = 0;
    for (const d of deps.get(st.step) || []) t = Math.max(t, end.get(d) || 0);
    for (const a of st.attempts || []) {
      const back = a.backoff_us || 0;
      const start = typeof a.started_us === 'number' ? a.started_us : t + back;
      const dur = Math.max(0, a.duration_us || 0);
      spans.push({step: st.step, stepAgent: st.agent, a, start, dur, back, estimated: typeof a.started_us !== 'number'});
      t = start + dur;
    }
    end.set(st.step, t);
  }
  return spans;
}

// svg#timeline: a row per step, one rect.attempt[data-step][data-agent][data-attempt]
// per attempt, the backoff before it as a dashed gap, fallbacks and breaker rejections
// named on the bar.
export function renderTimeline(steps, graph, opts = {}) {
  const spans = attemptSpans(steps, graph);
  const LW = 150, RH = 30, W = 900, top = 26;
  const stepIds = (steps || []).map((x) => x.step);
  const maxT = Math.max(1, ...spans.map((x) => x.start + x.dur));
  const scale = (W - LW - 90) / maxT; // room after the last bar for its label
  const H = top + Math.max(1, stepIds.length) * RH + 8;
  const svg = s('svg', {id: 'timeline', viewBox: `0 0 ${W} ${H}`, role: 'group',
    'aria-label': 'Timeline of every attempt'});
  for (let i = 0; i <= 4; i++) {
    const x = LW + (i * (W - LW - 90)) / 4;
    svg.append(s('line', {class: 'tick', x1: x, x2: x, y1: top - 6, y2: H - 4}));
    svg.append(s('text', {class: 'tick-label', x, y: 14, text: fmtUs(Math.round((maxT * i) / 4))}));
  }
  stepIds.forEach((id, r) => {
    svg.append(s('text', {class: 'row-label', x: 4, y: top + r * RH + 19, text: clip(id, 20)}));
  });
  for (const sp of spans) {
    const r = stepIds.indexOf(sp.step), y = top + r * RH + 4;
    const a = sp.a, fallback = a.agent && sp.stepAgent && a.agent !== sp.stepAgent;
    const breaker = a.class === 'circuit_open' ||
      (a.effects || []).some((e) => e.kind === 'breaker' && e.admission === 'reject');
    const st = a.status === 'succeeded' ? 'succeeded' : 'failed';
    if (sp.back > 0) {
      const x0 = LW + (sp.start - sp.back) * scale;
      svg.append(s('line', {class: 'backoff', x1: x0, x2: LW + sp.start * scale, y1: y + 11, y2: y + 11},
        s('title', {text: `backoff ${fmtUs(sp.back)} before attempt ${a.attempt}`})));
    }
    const x = LW + sp.start * scale, w = Math.max(5, sp.dur * scale);
    const tokens = attemptTokens(a), calls = providerCalls(a);
    const what = [`${sp.step}: attempt ${a.attempt} of agent ${a.agent}`, st,
      fallback ? 'fallback' : null, breaker ? 'rejected by the circuit breaker' : null,
      a.class && a.class !== 'none' ? `class ${a.class}` : null, a.message || null,
      `ran ${fmtUs(a.duration_us)}`, sp.back ? `after a backoff of ${fmtUs(sp.back)}` : null,
      calls ? `${calls} provider call${calls > 1 ? 's' : ''}` : null, tokens !== null ? `${tokens} tokens` : null,
      sp.estimated ? 'position estimated (no started_us)' : null].filter(Boolean).join('; ');
    const rect = s('rect', {class: ['attempt', statusClass(st), fallback && 'fallback', breaker && 'breaker'],
      x, y, width: w, height: 22, rx: 3, tabindex: 0, role: 'img', 'aria-label': what,
      dataset: {step: sp.step, agent: a.agent, attempt: a.attempt, status: st}}, s('title', {text: what}));
    if (opts.onSelect) {
      rect.addEventListener('click', () => opts.onSelect(sp.step));
      rect.addEventListener('keydown', (e) => { if (e.key === 'Enter') opts.onSelect(sp.step); });
    }
    svg.append(rect);
    const tag = `${symbol(st)}${a.attempt}${fallback ? ' ' + a.agent : ''}${breaker ? ' breaker' : ''}${tokens !== null ? ' ' + tokens + 't' : ''}`;
    // The label inside a wide bar, else after it when the row has room before the next one.
    const next = spans.find((o, j) => j > spans.indexOf(sp) && o.step === sp.step);
    const room = (next ? LW + (next.start - next.back) * scale : W) - (x + w);
    const need = tag.length * 6.5 + 4;
    if (w >= need) svg.append(s('text', {class: 'bar-label', x: x + 3, y: y + 15, 'aria-hidden': 'true', text: tag}));
    else if (room >= need) svg.append(s('text', {class: 'bar-label', x: x + w + 3, y: y + 15, 'aria-hidden': 'true', text: tag}));
  }
  return svg;
}
