// Compare: two run ids or two uploaded traces (POST /v1/debug, as `fluxroute debug --all
// --json` compares them): the first divergence, every differing field, and the differing
// steps highlighted on both DAGs.
import {api} from './api.js';
import {h, clear, badge, errorBox, section, jsonView} from './ui.js';
import {renderDag, normalizeGraph, withSteps} from './dag.js';
import {loadGraph, stepStatuses} from './run.js';

function side(letter) {
  const id = h('input', {id: 'compare-' + letter, name: letter, type: 'text', class: 'mono',
    placeholder: 'run id', spellcheck: 'false', 'aria-describedby': 'compare-help'});
  const file = h('input', {id: 'compare-' + letter + '-file', type: 'file', accept: 'application/json,.json'});
  return {id, file, box: h('fieldset', {}, h('legend', {text: letter === 'a' ? 'A (expected)' : 'B (actual)'}),
    h('label', {}, 'Run id ', id), h('label', {}, 'or a trace file ', file))};
}

async function value(sd) {
  if (sd.file.files && sd.file.files[0]) {
    const text = await sd.file.files[0].text();
    try {
      return JSON.parse(text);
    } catch (e) {
      throw new Error(`${sd.file.files[0].name} is not JSON: ${e.message}`);
    }
  }
  const v = sd.id.value.trim();
  if (!v) throw new Error('give a run id or a trace file for both sides');
  return v;
}

// The run's (or the uploaded trace's) steps and graph.
async function sideView(v) {
  let t = typeof v === 'object' ? v : null;
  let manifest = null, runGraph = null;
  if (!t) {
    const st = await api('GET', '/v1/runs/' + encodeURIComponent(v));
    manifest = st.manifest;
    runGraph = st.graph && st.graph.nodes && st.graph.nodes.length ? st.graph : null;
    try {
      t = await api('GET', `/v1/runs/${encodeURIComponent(v)}/trace`);
    } catch (e) {
      t = st.report || {};
    }
  }
  const steps = t.steps || [];
  const graph = runGraph ? withSteps(normalizeGraph(runGraph), steps)
    : await loadGraph(manifest || t.manifest_name, t.manifest, steps);
  return {steps, graph, label: typeof v === 'string' ? v : (t.run_id || 'uploaded trace')};
}

export async function comparePage(ctx) {
  const A = side('a'), B = side('b');
  const q = new URLSearchParams(location.hash.split('?')[1] || '');
  if (q.get('a')) A.id.value = q.get('a');
  if (q.get('b')) B.id.value = q.get('b');
  const result = h('div', {id: 'compare-result', 'aria-live': 'polite'});
  const form = h('form', {class: 'compare-form'}, A.box, B.box,
    h('p', {id: 'compare-help', class: 'muted', text: 'Run ids of this tenant that were traced, or trace files (fluxroute run --trace). Timing fields are ignored, as fluxroute debug does.'}),
    h('button', {id: 'compare-submit', type: 'submit', text: 'Compare'}));
  ctx.view.append(h('h1', {text: 'Compare two runs'}), section('Runs or traces', form), result);

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clear(result).append(h('p', {class: 'muted', text: 'Comparing…'}));
    let a, b, d;
    try {
      a = await value(A);
      b = await value(B);
      d = await api('POST', '/v1/debug', {a, b, all: true});
    } catch (err) {
      clear(result).append(errorBox(err, 'Cannot compare'));
      return;
    }
    const divs = d.divergences || (d.divergence ? [d.divergence] : []);
    const steps = new Set(divs.map((x) => x.step).filter(Boolean));
    clear(result).append(h('p', {class: d.identical ? 'ok' : 'bad', id: 'compare-verdict'},
      badge(d.identical ? 'identical' : 'differs'),
      d.identical ? ' The two runs are identical (timing fields aside).'
        : ` ${divs.length} differing field${divs.length === 1 ? '' : 's'}${steps.size ? ' in step' + (steps.size > 1 ? 's ' : ' ') + [...steps].join(', ') : ''}.`));
    if (d.notes && d.notes.length) result.append(h('ul', {class: 'notes'}, d.notes.map((n) => h('li', {text: n}))));
    if (divs.length) {
      result.append(section('First divergence', jsonView(divs[0], 3)));
      const rows = divs.map((x, i) => h('tr', {dataset: {step: x.step ?? ''}, class: i === 0 ? 'first' : null},
        h('td', {class: 'mono', text: x.path}), h('td', {text: x.step ?? '—'}),
        h('td', {text: x.agent ? `${x.agent} #${x.attempt ?? ''}` : '—'}),
        h('td', {}, jsonView(x.expected ?? null, 0)), h('td', {}, jsonView(x.actual ?? null, 0))));
      result.append(section('Every differing field', h('div', {class: 'scroll'}, h('table', {class: 'diffs', id: 'compare-diffs'},
        h('thead', {}, h('tr', {}, ['Path', 'Step', 'Attempt', 'A (expected)', 'B (actual)'].map((t) => h('th', {scope: 'col', text: t})))),
        h('tbody', {}, rows)))));
    }
    try {
      const [va, vb] = await Promise.all([sideView(a), sideView(b)]);
      result.append(h('p', {class: 'muted legend', text: 'Steps with a differing field are outlined and marked “≠ differs” on both graphs.'}), h('div', {class: 'pair'},
        section('A: ' + va.label, h('div', {class: 'scroll'}, renderDag(va.graph, {id: 'dag-a', statuses: stepStatuses(va.steps), diff: steps, label: 'Steps of A; differing steps are marked “differs”'}))),
        section('B: ' + vb.label, h('div', {class: 'scroll'}, renderDag(vb.graph, {id: 'dag-b', statuses: stepStatuses(vb.steps), diff: steps, label: 'Steps of B; differing steps are marked “differs”'})))));
    } catch (err) {
      result.append(errorBox(err, 'Cannot draw the graphs'));
    }
  });
}
