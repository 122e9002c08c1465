// Live run: start a run of a manifest with an input (operators and admins), and watch it
// through the SSE endpoint: steps light up as they start and finish, llm tokens stream in.
import {api, sse} from './api.js';
import {h, clear, badge, errorBox, section, jsonView} from './ui.js';
import {renderDag, setNodeStatus} from './dag.js';
import {loadGraph, stepStatuses} from './run.js';

export async function listManifests() {
  let m;
  try {
    m = await api('GET', '/v1/manifests');
  } catch (e) {
    if (e.status !== 404) throw e;
    // A server without GET /v1/manifests: the names its recent runs used.
    const r = await api('GET', '/v1/runs?limit=200');
    m = [...new Set(r.runs.map((x) => x.manifest).filter(Boolean))].sort();
  }
  const list = Array.isArray(m) ? m : (m && (m.manifests || m.items)) || [];
  return list.map((x) => (typeof x === 'string' ? {name: x} : x)).filter((x) => x && x.name);
}

export async function livePage(ctx) {
  const msg = h('div');
  const select = h('select', {id: 'manifest-select', name: 'manifest'});
  const editor = h('textarea', {id: 'input-editor', name: 'input', rows: 5, spellcheck: 'false',
    'aria-describedby': 'input-help'});
  editor.value = '{\n  "text": "hello"\n}\n';
  const trace = h('input', {id: 'live-trace', type: 'checkbox', checked: true});
  const form = h('form', {class: 'live-form', id: 'live-form'},
    h('label', {for: 'manifest-select', text: 'Manifest'}), select,
    h('label', {for: 'input-editor', text: 'Input (JSON)'}), editor,
    h('p', {id: 'input-help', class: 'muted', text: 'Any JSON value; it is the run\'s input.'}),
    h('label', {class: 'check'}, trace, ' keep a trace (replay, compare)'));
  if (ctx.mayRun) form.append(h('button', {id: 'run-button', type: 'submit', text: 'Run'}));
  else form.append(h('p', {class: 'muted', id: 'run-denied',
    text: 'This key may not start runs (a viewer key): the run button is not shown, and the API refuses runs from it.'}));
  const dagBox = h('div', {class: 'scroll'});
  const status = h('div', {id: 'live-status', 'aria-live': 'polite'});
  const failures = h('div', {id: 'live-failures'});
  const tokens = h('div', {id: 'live-tokens'});
  ctx.view.append(h('h1', {text: 'Live run'}), msg, section('Start', form),
    section('Progress', status, dagBox, failures), section('Streamed tokens', tokens));

  let manifests = [];
  try {
    manifests = await listManifests();
  } catch (e) {
    msg.append(errorBox(e, 'Cannot list manifests'));
  }
  for (const m of manifests) select.append(h('option', {value: m.name, text: m.name}));
  if (!manifests.length) select.append(h('option', {value: '', text: '(no manifests)'}));

  let graph = null, svg = null, abort = null;
  async function drawFor(name) {
    graph = name ? await loadGraph(name, null, []) : {nodes: [], edges: []};
    svg = renderDag(graph, {statuses: new Map()});
    clear(dagBox).append(svg);
  }
  // Without the manifest's graph from the server, the trace's manifest text gives it.
  async function redrawFromTrace(rep) {
    try {
      const t = await api('GET', `/v1/runs/${encodeURIComponent(rep.run_id)}/trace`);
      graph = await loadGraph(null, t.manifest, rep.steps);
      svg = renderDag(graph, {statuses: stepStatuses(rep.steps)});
      clear(dagBox).append(svg);
    } catch (_) { /* keep the nodes drawn */ }
  }
  select.addEventListener('change', () => drawFor(select.value).catch(() => {}));
  await drawFor(select.value).catch(() => {});
  ctx.onStop(() => abort && abort.abort());

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!ctx.mayRun) return;
    let input;
    try {
      input = JSON.parse(editor.value);
    } catch (err) {
      clear(status).append(errorBox(err, 'The input is not JSON'));
      editor.focus();
      return;
    }
    await drawFor(select.value).catch(() => {});
    clear(tokens);
    clear(failures);
    clear(status).append(h('p', {text: 'Starting…'}));
    const btn = document.getElementById('run-button');
    btn.disabled = true;
    abort = new AbortController();
    const streams = new Map();
    const stream = (step) => {
      if (!streams.has(step)) {
        const pre = h('pre', {class: 'tokens', dataset: {step}});
        tokens.append(h('h3', {class: 'mono', text: step}), pre);
        streams.set(step, pre);
      }
      return streams.get(step);
    };
    const mark = (step, st) => {
      if (!svg.querySelector(`g.node[data-step="${CSS.escape(step)}"]`)) {
        graph.nodes.push({id: step});
        svg = renderDag(graph, {statuses: new Map([...svg.querySelectorAll('g.node')].map((g) => [g.dataset.step, g.dataset.status]))});
        clear(dagBox).append(svg);
      }
      setNodeStatus(svg, step, st);
    };
    try {
      await sse('/v1/run', {manifest: select.value, input, trace: trace.checked}, (name, d) => {
        if (name === 'run') {
          clear(status).append(h('p', {}, 'Run ', h('a', {href: '#/runs/' + encodeURIComponent(d.run_id), class: 'mono', text: d.run_id}), ' is running.'));
        } else if (name === 'step_started') {
          mark(d.step, 'running');
        } else if (name === 'step') {
          mark(d.step, d.status);
        } else if (name === 'token') {
          stream(d.step).append(document.createTextNode(d.text));
        } else if (name === 'report') {
          for (const st of d.steps || []) mark(st.step, st.status);
          clear(status).append(h('p', {}, 'Run ', h('a', {href: '#/runs/' + encodeURIComponent(d.run_id), class: 'mono', text: d.run_id}),
            ' finished: ', badge(d.status)));
          if (d.status !== 'succeeded') failures.append(h('h3', {text: 'Errors'}), jsonView((d.steps || []).filter((x) => x.error).map((x) => ({step: x.step, error: x.error})), 2));
          if (!graph.edges.length && trace.checked) redrawFromTrace(d);
        } else if (name === 'error') {
          status.append(errorBox({message: d && d.error ? d.error.message : String(d)}, 'The server'));
        }
      }, abort.signal);
    } catch (err) {
      if (err.name !== 'AbortError') clear(status).append(errorBox(err, 'The run was refused'));
    } finally {
      btn.disabled = false;
    }
  });
}
