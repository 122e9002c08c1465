// Run detail: the DAG (by dependency level, status on every node), the attempt timeline,
// the selected step's panel, the trace download and its replay.  A running run is polled.
import {api, download} from './api.js';
import {h, clear, badge, fmtUs, jsonView, errorBox, section} from './ui.js';
import {normalizeGraph, graphFromManifest, withSteps, renderDag, renderTimeline, attemptTokens} from './dag.js';

const POLL_MS = 1000;

export async function loadGraph(name, manifestText, steps) {
  let g = null;
  if (name) {
    try {
      const m = await api('GET', '/v1/manifests/' + encodeURIComponent(name));
      if (m && m.graph) g = normalizeGraph(m.graph);
    } catch (e) {
      if (e.status === 401) throw e;
    }
  }
  if ((!g || !g.nodes.length) && manifestText) g = graphFromManifest(manifestText);
  return withSteps(g || {nodes: [], edges: []}, steps);
}

export function stepStatuses(steps) {
  return new Map((steps || []).map((x) => [x.step, x.status]));
}

export async function runPage(ctx) {
  const id = ctx.arg;
  let timer = null, selected = null, stopped = false;
  ctx.onStop(() => { stopped = true; clearTimeout(timer); });
  const head = h('div', {class: 'run-head'});
  const msg = h('div');
  const dagBox = h('div', {class: 'scroll'});
  const tlBox = h('div', {class: 'scroll'});
  const panel = h('aside', {id: 'step-panel', class: 'card panel', tabindex: -1, 'aria-label': 'Selected step'},
    h('p', {class: 'muted', text: 'Select a step in the graph or the timeline (Tab, then Enter).'}));
  const replayOut = h('div', {id: 'replay-result', 'aria-live': 'polite'});
  ctx.view.append(h('p', {}, h('a', {href: '#/runs', text: '← All runs'})), head, msg,
    h('div', {class: 'detail'},
      h('div', {class: 'main-col'},
        section('Graph', h('p', {class: 'muted legend', text: '✓ succeeded  ✗ failed  ↷ skipped  ▶ running  ⊘ cancelled  ○ pending'}), dagBox),
        section('Attempts', h('p', {class: 'muted legend', text: 'One bar per attempt (✓/✗ and its number), fallback agents named, dashed lines are backoff waits, “breaker” a breaker rejection, “Nt” tokens.'}), tlBox),
        replayOut),
      panel));

  let graph = null, trace = null, data = null;

  async function refresh() {
    try {
      data = await api('GET', '/v1/runs/' + encodeURIComponent(id));
    } catch (e) {
      clear(msg).append(errorBox(e, `Cannot read run ${id}`));
      return false;
    }
    clear(msg);
    const done = !!data.report;
    if (done && data.traced && !trace) {
      try {
        trace = await api('GET', `/v1/runs/${encodeURIComponent(id)}/trace`);
      } catch (e) {
        if (e.status === 401) throw e;
      }
    }
    const rep = trace || data.report || {};
    const steps = rep.steps || [];
    if (data.graph && data.graph.nodes && data.graph.nodes.length) // the graph the run executed
      graph = withSteps(normalizeGraph(data.graph), steps);
    else if (!graph || !done)
      graph = await loadGraph(data.manifest || (trace && trace.manifest_name), trace && trace.manifest, steps);
    else withSteps(graph, steps);
    draw(data, rep, steps);
    return done;
  }

  function draw(st, rep, steps) {
    clear(head).append(h('h1', {}, 'Run ', h('span', {class: 'mono', text: st.run_id}), ' ', badge(st.status)),
      h('div', {class: 'actions'}, actions(st)));
    if (rep.notes && rep.notes.length) head.append(h('ul', {class: 'notes'}, rep.notes.map((n) => h('li', {text: n}))));
    const pick = (step) => { selected = step; showStep(step, steps, rep); };
    // A redraw while the run goes on keeps the keyboard focus on the same node or bar.
    const a = document.activeElement;
    const kept = a && a.closest && a.closest('svg') && a.dataset && a.dataset.step
      ? {sel: a.matches('g.node') ? 'svg#dag g.node' : 'svg#timeline rect.attempt', step: a.dataset.step, attempt: a.dataset.attempt, agent: a.dataset.agent}
      : null;
    clear(dagBox).append(renderDag(graph, {statuses: stepStatuses(steps), onSelect: pick}));
    clear(tlBox).append(steps.length ? renderTimeline(steps, graph, {onSelect: pick})
      : h('p', {class: 'muted', text: 'No attempts yet.'}));
    if (kept) {
      const el = [...document.querySelectorAll(kept.sel)].find((x) => x.dataset.step === kept.step &&
        x.dataset.attempt === kept.attempt && x.dataset.agent === kept.agent);
      if (el) el.focus();
    }
    if (!selected) {
      const failed = steps.find((x) => x.status === 'failed');
      if (failed) selected = failed.step;
    }
    if (selected) showStep(selected, steps, rep, true);
  }

  function actions(st) {
    const out = [];
    if (st.traced && st.report) {
      out.push(h('button', {type: 'button', id: 'trace-download', text: 'Download trace', onclick: async () => {
        try {
          const t = trace || await api('GET', `/v1/runs/${encodeURIComponent(id)}/trace`);
          download(`fluxroute-trace-${id}.json`, t);
        } catch (e) {
          clear(replayOut).append(errorBox(e, 'Cannot download the trace'));
        }
      }}));
      out.push(h('button', {type: 'button', id: 'replay-button', text: 'Replay', onclick: replay}));
    } else if (st.report) {
      out.push(h('span', {class: 'muted', text: 'No trace kept (start runs with "trace": true to replay them).'}));
    }
    if (!st.report && ctx.mayRun)
      out.push(h('button', {type: 'button', id: 'cancel-button', text: 'Cancel run', onclick: async () => {
        try {
          await api('DELETE', '/v1/runs/' + encodeURIComponent(id));
        } catch (e) {
          clear(msg).append(errorBox(e, 'Cannot cancel'));
        }
      }}));
    return out;
  }

  async function replay() {
    clear(replayOut).append(h('p', {class: 'muted', text: 'Replaying…'}));
    try {
      const r = await api('POST', '/v1/replay', {run_id: id});
      clear(replayOut).append(section('Replay',
        h('p', {class: r.identical ? 'ok' : 'bad'}, badge(r.identical ? 'identical' : 'differs'),
          r.identical ? ` the replay matched the recording (${r.steps} steps).`
            : ` the replay diverged after ${r.steps} steps; the first divergence:`),
        r.divergence ? jsonView(r.divergence, 3) : null,
        r.notes && r.notes.length ? h('ul', {class: 'notes'}, r.notes.map((n) => h('li', {text: n}))) : null));
    } catch (e) {
      clear(replayOut).append(errorBox(e, 'Replay failed'));
    }
  }

  function showStep(step, steps, rep, quiet) {
    const st = steps.find((x) => x.step === step);
    clear(panel);
    for (const g of document.querySelectorAll('#dag g.node'))
      g.classList.toggle('selected', g.dataset.step === step);
    if (!st) {
      panel.append(h('h2', {text: step}), h('p', {class: 'muted', text: 'This step has not started.'}));
      return;
    }
    const deps = graph.edges.filter(([, b]) => b === step).map(([a]) => a);
    const input = data && data.input !== undefined ? data.input : rep.input;
    const fromDeps = {};
    for (const d of deps) {
      const x = steps.find((y) => y.step === d);
      fromDeps[d] = x ? x.output ?? null : null;
    }
    panel.append(h('h2', {}, h('span', {class: 'mono', text: st.step}), ' ', badge(st.status)),
      h('dl', {class: 'facts'},
        h('dt', {text: 'Agent'}), h('dd', {text: st.agent}),
        h('dt', {text: 'Answered by'}), h('dd', {text: st.answered_by ?? '—'}),
        h('dt', {text: 'Duration'}), h('dd', {text: fmtUs(st.duration_us)}),
        h('dt', {text: 'Attempts'}), h('dd', {text: String((st.attempts || []).length)})));
    if (st.error)
      panel.append(h('div', {class: 'step-error', role: 'note'},
        h('h3', {text: 'Error'}), h('p', {}, h('span', {class: 'tag', text: st.error.class || 'error'}), ' ',
          h('span', {class: 'msg', text: st.error.message ?? ''}))));
    panel.append(h('h3', {text: 'Input'}),
      h('div', {class: 'step-input'},
        deps.length ? [h('p', {class: 'muted', text: 'Outputs of its dependencies:'}), jsonView(fromDeps, 1)] : null,
        input !== undefined ? [h('p', {class: 'muted', text: 'The run\'s input:'}), jsonView(input, 1)]
          : h('p', {class: 'muted', text: 'The run\'s input was not kept.'})),
      h('h3', {text: 'Output'}), jsonView(st.output ?? null, 2),
      h('h3', {text: 'Attempts'}),
      h('ol', {class: 'attempts'}, (st.attempts || []).map((a) => {
        const t = attemptTokens(a);
        return h('li', {}, badge(a.status), ` ${a.agent} #${a.attempt}, ran ${fmtUs(a.duration_us)}`,
          a.backoff_us ? `, after ${fmtUs(a.backoff_us)} backoff` : '',
          t !== null ? `, ${t} tokens` : '',
          a.class && a.class !== 'none' ? [' — ', h('span', {class: 'tag', text: a.class}), ' ', h('span', {text: a.message ?? ''})] : '');
      })));
    if (!quiet) panel.focus();
  }

  const poll = async () => {
    const done = await refresh();
    if (!done && !stopped) timer = setTimeout(poll, POLL_MS);
  };
  await poll();
}
