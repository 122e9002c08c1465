// The OpenAI-compatible gateway of `fluxroute serve`, driven by the official `openai` npm
// client (tests/package.json pins it).  Starts tests/fake_vendor, a vendor that always
// answers 500, and serve with a routes file, all on 127.0.0.1 ephemeral ports; prints TAP
// lines ("ok - ...", "not ok - ...") and exits non-zero when a check failed.
// Run by tests/e2e/e2e_gateway.sh (FLUXROUTE, FAKE_VENDOR, TMP set there).
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import { writeFileSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import OpenAI from 'openai';

const { FLUXROUTE, FAKE_VENDOR, TMP } = process.env;
let failed = 0;
const children = [];

function ok(name) { console.log(`ok - ${name}`); }
function notOk(name, why) {
  failed++;
  console.log(`not ok - ${name}`);
  for (const line of String(why).split('\n').slice(0, 30)) console.log(`#   ${line}`);
}
function check(name, cond, why = '') { cond ? ok(name) : notOk(name, why); }
function eq(name, got, want) {
  const g = JSON.stringify(got), w = JSON.stringify(want);
  check(name, g === w, `got ${g}\nwant ${w}`);
}
const sha = (s) => createHash('sha256').update(s).digest('hex');

// Starts a program and resolves with the first stdout line matching re (its match).
function start(cmd, args, re, env = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    children.push(p);
    let out = '', err = '';
    const timer = setTimeout(() => reject(new Error(`${cmd} did not start: ${err}`)), 30000);
    p.stdout.on('data', (d) => {
      out += d;
      const m = out.match(re);
      if (m) { clearTimeout(timer); resolve({ p, m, stderr: () => err }); }
    });
    p.stderr.on('data', (d) => { err += d; });
    p.on('exit', (code) => { clearTimeout(timer); reject(new Error(`${cmd} exited ${code}: ${err}`)); });
  });
}

// Waits (at most ms) for fn() to be truthy.
async function until(fn, ms = 10000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function main() {
  // ---- the vendors --------------------------------------------------------------------
  const fake = await start(FAKE_VENDOR, ['--openai-key', 'sk-gw', '--anthropic-key', 'ak-gw',
    '--gemini-key', 'gk-gw'], /port (\d+)/);
  const fport = fake.m[1];
  let brokenHits = 0;
  const broken = createServer((req, res) => {
    brokenHits++;
    req.resume();
    req.on('end', () => {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end('{"error":{"message":"the broken vendor always fails","type":"server_error"}}');
    });
  });
  await new Promise((r) => broken.listen(0, '127.0.0.1', r));
  const bport = broken.address().port;

  const base = `http://127.0.0.1:${fport}`;
  writeFileSync(`${TMP}/providers.yaml`, `providers:
  - {id: openai, plugin: openai, config: {model: gpt-fake, base_url: "${base}/v1", api_key_env: GW_OPENAI_KEY}}
  - {id: anthropic, plugin: anthropic, config: {model: claude-fake, base_url: "${base}", api_key_env: GW_ANTHROPIC_KEY}}
  - {id: gemini, plugin: gemini, config: {model: gemini-fake, base_url: "${base}", api_key_env: GW_GEMINI_KEY}}
  - {id: broken, plugin: openai, config: {model: none, base_url: "http://127.0.0.1:${bport}/v1", api_key_env: GW_OPENAI_KEY}}
`);
  const routes = (extra = '') => `routes:
  - name: chat
    targets: [{provider: openai, model: gpt-4o-mini}]
  - name: fallback
    targets: [{provider: broken}, {provider: openai}]
    retry: {max_attempts: 2, backoff: constant, base_delay: 10ms}
    timeout: 10s
  - name: claude
    targets: [{provider: anthropic}]
  - name: gemini
    targets: [{provider: gemini, model: gemini-other}]
  - name: private
    targets: [{provider: openai}]
    namespaces: [elsewhere]
  - name: summary
    pipeline: summary.yaml
${extra}`;
  writeFileSync(`${TMP}/routes.yaml`, routes());
  writeFileSync(`${TMP}/m/summary.yaml`, `router: {namespace: acme}
agents:
  - {id: draft, plugin: llm, provider: openai, config: {prompt: "draft {{input.messages.0.content}}"}}
  - {id: polish, plugin: llm, provider: openai, config: {prompt: "polish {{steps.draft.text}}"}}
pipeline: [{step: draft}, {step: polish, depends_on: draft}]
`);
  const KEY = 'gw-operator-key-0123456789', VIEW = 'gw-viewer-key-0123456789',
    ADMIN = 'gw-admin-key-0123456789';
  writeFileSync(`${TMP}/keys.yaml`, `keys:
  - {id: op, sha256: ${sha(KEY)}, tenant: acme, namespace: acme, role: operator}
  - {id: viewer, sha256: ${sha(VIEW)}, tenant: acme, namespace: acme, role: viewer}
  - {id: admin, sha256: ${sha(ADMIN)}, tenant: ops, namespace: ops, role: admin}
`);
  const serve = await start(FLUXROUTE, ['serve', '--addr', '127.0.0.1:0', '--manifest-dir',
    `${TMP}/m`, '--keys', `${TMP}/keys.yaml`, '--providers', `${TMP}/providers.yaml`,
    '--max-runs-per-tenant', '1'],
  /listening on (http:\/\/127\.0\.0\.1:\d+)/, {
    GW_OPENAI_KEY: 'sk-gw', GW_ANTHROPIC_KEY: 'ak-gw', GW_GEMINI_KEY: 'gk-gw',
    ROUTER_ROUTES_FILE: `${TMP}/routes.yaml`,
  });
  const url = serve.m[1];
  const client = new OpenAI({ apiKey: KEY, baseURL: `${url}/v1`, maxRetries: 0, timeout: 20000 });
  const get = async (path, key = KEY) => {
    const r = await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${key}` } });
    return { status: r.status, text: await r.text(), headers: r.headers };
  };
  const runOf = async (id) => JSON.parse((await get(`/v1/runs/${id}`)).text);
  const traces = [];

  // ---- a plain completion -------------------------------------------------------------
  {
    const { data: c, response } = await client.chat.completions.create({
      model: 'chat',
      messages: [{ role: 'system', content: 'You are a test.' }, { role: 'user', content: 'hello there gateway' }],
      temperature: 0.5, max_completion_tokens: 50, seed: 7, user: 'u-1',
    }).withResponse();
    const rid = response.headers.get('x-fluxroute-run-id');
    eq('plain: the vendor answered', c.choices[0].message.content, 'fake-openai heard: hello there gateway');
    eq('plain: chat.completion shape', [c.object, c.choices.length, c.choices[0].index,
      c.choices[0].message.role, c.choices[0].finish_reason], ['chat.completion', 1, 0, 'assistant', 'stop']);
    eq('plain: id is chatcmpl-<run id>', c.id, `chatcmpl-${rid}`);
    check('plain: created is a unix time', Math.abs(c.created - Date.now() / 1000) < 120, c.created);
    check('plain: usage', c.usage.prompt_tokens > 0 && c.usage.completion_tokens > 0 &&
      c.usage.total_tokens === c.usage.prompt_tokens + c.usage.completion_tokens, JSON.stringify(c.usage));
    eq('plain: model is the route the client named', c.model, 'chat');
    check('plain: X-FluxRoute-Overhead-Us', /^\d+$/.test(response.headers.get('x-fluxroute-overhead-us') || ''),
      response.headers.get('x-fluxroute-overhead-us'));
    const run = await runOf(rid);
    check('plain: recorded as a traced run', run.status === 'succeeded' && run.traced === true, JSON.stringify(run));
    traces.push(['plain', rid]);
  }

  // ---- streaming with include_usage ---------------------------------------------------
  {
    const { data: stream, response } = await client.chat.completions.create({
      model: 'chat', stream: true, stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'hello stream world' }],
    }).withResponse();
    const rid = response.headers.get('x-fluxroute-run-id');
    const chunks = [];
    for await (const ch of stream) chunks.push(ch);
    const text = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
    eq('stream: text from the chunks', text, 'fake-openai heard: hello stream world');
    check('stream: several content chunks', chunks.filter((c) => c.choices[0]?.delta?.content).length >= 3,
      JSON.stringify(chunks));
    check('stream: every chunk is a chat.completion.chunk of the run',
      chunks.every((c) => c.object === 'chat.completion.chunk' && c.id === `chatcmpl-${rid}`), JSON.stringify(chunks[0]));
    eq('stream: the first delta has the role', chunks[0].choices[0].delta.role, 'assistant');
    const fin = chunks.filter((c) => c.choices[0]?.finish_reason);
    eq('stream: one finish_reason, stop', fin.map((c) => c.choices[0].finish_reason), ['stop']);
    const last = chunks[chunks.length - 1];
    check('stream: the last chunk has the usage and no choices', last.choices.length === 0 &&
      last.usage && last.usage.total_tokens === last.usage.prompt_tokens + last.usage.completion_tokens &&
      last.usage.completion_tokens > 0, JSON.stringify(last));
    traces.push(['stream', rid]);
    // The raw bytes: data lines only, [DONE] last.
    const raw = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'chat', stream: true, messages: [{ role: 'user', content: 'raw bytes' }] }),
    });
    const body = await raw.text();
    check('stream: text/event-stream of data: lines ending in [DONE]',
      raw.headers.get('content-type').startsWith('text/event-stream') &&
      body.split('\n\n').filter(Boolean).every((f) => f.startsWith('data: ')) &&
      body.trimEnd().endsWith('data: [DONE]') && !body.includes('event:'), body.slice(-300));
  }

  // ---- tool calls over two turns ------------------------------------------------------
  const tools = [{ type: 'function', function: { name: 'get_weather', description: 'Weather of a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }];
  for (const model of ['chat', 'claude', 'gemini']) {
    const vendor = { chat: 'openai', claude: 'anthropic', gemini: 'gemini' }[model];
    const messages = [{ role: 'user', content: '@tool what is the weather in Paris' }];
    const c1 = await client.chat.completions.create({ model, messages, tools, tool_choice: 'auto' });
    const tc = c1.choices[0].message.tool_calls || [];
    check(`tools ${vendor}: turn 1 asks for get_weather`, tc.length === 1 && tc[0].type === 'function' &&
      tc[0].function.name === 'get_weather' && typeof tc[0].id === 'string' && tc[0].id.length > 0,
    JSON.stringify(c1.choices[0]));
    eq(`tools ${vendor}: arguments are JSON text`, tc[0] && JSON.parse(tc[0].function.arguments), { city: 'Paris' });
    eq(`tools ${vendor}: finish_reason tool_calls`, c1.choices[0].finish_reason, 'tool_calls');
    messages.push(c1.choices[0].message);
    messages.push({ role: 'tool', tool_call_id: tc[0]?.id, content: 'sunny' });
    const c2 = await client.chat.completions.create({ model, messages, tools });
    eq(`tools ${vendor}: turn 2 answers from the tool result`, c2.choices[0].message.content, 'tool result: sunny');
    // The same request for each vendor: plain text too.
    const c3 = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'same request' }], tools });
    eq(`cross-vendor ${vendor}: plain answer`, c3.choices[0].message.content, `fake-${vendor} heard: same request`);
  }
  {
    // Streamed tool call.
    const stream = await client.chat.completions.create({ model: 'chat', stream: true,
      messages: [{ role: 'user', content: '@tool weather please' }], tools });
    const chunks = [];
    for await (const ch of stream) chunks.push(ch);
    const calls = chunks.flatMap((c) => c.choices[0]?.delta?.tool_calls ?? []);
    check('stream tools: a tool_calls delta with index, id and name',
      calls.length === 1 && calls[0].index === 0 && calls[0].id && calls[0].function.name === 'get_weather',
      JSON.stringify(chunks));
    eq('stream tools: finish_reason tool_calls', chunks.filter((c) => c.choices[0]?.finish_reason)
      .map((c) => c.choices[0].finish_reason), ['tool_calls']);
  }

  // ---- the fields of ABI 1.2's normalized request are passed on ----------------------
  {
    // Whether the vendor takes them is the provider plugin's to say (an "unsupported
    // field 'NAME'" 400 names it in param); what the gateway hands on is in the trace.
    let rid = null, status = 200;
    try {
      const { response } = await client.chat.completions.create({
        model: 'chat', top_p: 0.5, seed: 3, user: 'u-9', tool_choice: { type: 'function', function: { name: 'get_weather' } },
        tools, response_format: { type: 'json_schema', json_schema: { name: 'w', schema: { type: 'object' } } },
        messages: [{ role: 'developer', content: 'dev rules' }, { role: 'user', content: [{ type: 'text', text: 'look' },
          { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } }] }],
      }).withResponse();
      rid = response.headers.get('x-fluxroute-run-id');
    } catch (e) {
      status = e.status;
      rid = e.headers?.get('x-fluxroute-run-id');
      check('new fields: a refusal is a 400 from the provider', e.status === 400 && e.error?.type === 'invalid_request_error', e.message);
    }
    const t = JSON.parse((await get(`/v1/runs/${rid}/trace`)).text);
    eq(`new fields: the normalized request in the run's input (HTTP ${status})`, t.input, {
      system: 'dev rules',
      messages: [{ role: 'user', content: [{ type: 'text', text: 'look' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } }] }],
      tools: [{ name: 'get_weather', description: 'Weather of a city', parameters: tools[0].function.parameters }],
      tool_choice: { name: 'get_weather' }, top_p: 0.5, seed: 3, user: 'u-9',
      response_format: { type: 'json_schema', json_schema: { name: 'w', schema: { type: 'object' } } }, stream: false,
    });
  }

  // ---- fallback: the first target answers 500, the second answers ---------------------
  {
    brokenHits = 0;
    const { data: c, response } = await client.chat.completions.create({
      model: 'fallback', messages: [{ role: 'user', content: 'fall back please' }] }).withResponse();
    eq('fallback: the second target answered', c.choices[0].message.content, 'fake-openai heard: fall back please');
    eq('fallback: the broken vendor was tried twice (the route\'s retry)', brokenHits, 2);
    const run = await runOf(response.headers.get('x-fluxroute-run-id'));
    const att = run.report.steps[0].attempts.map((a) => [a.agent, a.class ?? null]);
    check('fallback: the report shows the attempts', att.length === 3 && att[0][0] === 'fallback.target_1' &&
      att[2][0] === 'fallback.target_2', JSON.stringify(run.report.steps[0].attempts));
    traces.push(['fallback', response.headers.get('x-fluxroute-run-id')]);
    const stream = await client.chat.completions.create({ model: 'fallback', stream: true,
      messages: [{ role: 'user', content: 'fall back streaming' }] });
    let text = '';
    for await (const ch of stream) text += ch.choices[0]?.delta?.content ?? '';
    eq('fallback: a stream falls back before its first byte', text, 'fake-openai heard: fall back streaming');
  }

  // ---- a vendor failing mid-stream: an error frame, no [DONE], no fallback ------------
  {
    writeFileSync(`${TMP}/routes.yaml`, routes(`  - name: midstream
    targets: [{provider: openai}, {provider: anthropic}]
`));
    process.kill(serve.p.pid, 'SIGHUP');
    const listed = await until(async () => (await get('/v1/models')).text.includes('"midstream"'));
    check('SIGHUP: the routes file is read again', listed, (await get('/v1/models')).text);
    const { data: stream, response } = await client.chat.completions.create({ model: 'midstream', stream: true,
      messages: [{ role: 'user', content: 'one two three @stream_drop' }] }).withResponse();
    let text = '', err = null;
    try {
      for await (const ch of stream) text += ch.choices[0]?.delta?.content ?? '';
    } catch (e) { err = e; }
    check('mid-stream: the client gets an error after the partial text', err instanceof OpenAI.APIError &&
      text.startsWith('fake-openai heard:'), `${err} / ${text}`);
    const run = await runOf(response.headers.get('x-fluxroute-run-id'));
    eq('mid-stream: no fallback after the first byte', run.report.steps[0].attempts.map((a) => a.agent), ['midstream.target_1']);
    const raw = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'midstream', stream: true, messages: [{ role: 'user', content: 'a b @stream_drop' }] }),
    });
    const body = await raw.text();
    check('mid-stream: data: {"error": ...} and never [DONE]', body.includes('data: {"error":') &&
      !body.includes('[DONE]'), body.slice(-400));
  }

  // ---- errors ---------------------------------------------------------------------------
  const expectError = async (name, fn, cls, status, param) => {
    try {
      await fn();
      notOk(name, 'no error');
    } catch (e) {
      check(`${name}: ${cls.name} ${status}`, e instanceof cls && e.status === status, `${e?.constructor?.name} ${e?.status} ${e?.message}`);
      if (param !== undefined) eq(`${name}: param`, e.param ?? null, param);
      check(`${name}: OpenAI error shape`, e.error && typeof e.error.message === 'string' &&
        typeof e.type === 'string' && 'code' in e, JSON.stringify(e.error));
      return e;
    }
  };
  const bad = new OpenAI({ apiKey: 'not-a-key', baseURL: `${url}/v1`, maxRetries: 0 });
  await expectError('bad key', () => bad.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'x' }] }),
    OpenAI.AuthenticationError, 401);
  await expectError('unknown model', () => client.chat.completions.create({ model: 'gpt-nope', messages: [{ role: 'user', content: 'x' }] }),
    OpenAI.NotFoundError, 404, 'model');
  await expectError('another namespace\'s route', () => client.chat.completions.create({ model: 'private', messages: [{ role: 'user', content: 'x' }] }),
    OpenAI.NotFoundError, 404, 'model');
  await expectError('n: 2', () => client.chat.completions.create({ model: 'chat', n: 2, messages: [{ role: 'user', content: 'x' }] }),
    OpenAI.BadRequestError, 400, 'n');
  await expectError('an unknown field', () => client.chat.completions.create({ model: 'chat', logit_bias: { 50256: -100 }, messages: [{ role: 'user', content: 'x' }] }),
    OpenAI.BadRequestError, 400, 'logit_bias');
  await expectError('an unknown message field', () => client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'x', name: 'bob' }] }),
    OpenAI.BadRequestError, 400, 'messages[0].name');
  const viewer = new OpenAI({ apiKey: VIEW, baseURL: `${url}/v1`, maxRetries: 0 });
  await expectError('viewer key', () => viewer.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'x' }] }),
    OpenAI.PermissionDeniedError, 403);
  {
    // SDK defaults are accepted.
    const c = await client.chat.completions.create({ model: 'chat', n: 1, presence_penalty: 0,
      frequency_penalty: 0, logprobs: false, messages: [{ role: 'user', content: 'defaults ok' }] });
    eq('SDK defaults (n: 1, penalties 0, logprobs false) are accepted', c.choices[0].message.content, 'fake-openai heard: defaults ok');
  }
  {
    const e = await expectError('the vendor\'s 429 passed through', () => client.chat.completions.create({ model: 'chat',
      messages: [{ role: 'user', content: 'busy @status=429 @retry_after=7' }] }), OpenAI.RateLimitError, 429);
    check('the vendor\'s 429: its Retry-After passed on', e && e.headers.get('retry-after') === '7', e && [...e.headers]);
  }
  {
    // 429 from a limit (--max-runs-per-tenant 1): the client's own retry waits Retry-After.
    // Earlier runs are answered before their records are written (serve's record writer):
    // until then the list shows them running, so it must be empty before the slow run
    // starts, or the check below could see one of them instead.
    const running = async () => JSON.parse((await get('/v1/runs?status=running')).text).runs.length;
    check('429: no earlier run is still being recorded', await until(async () => (await running()) === 0));
    const slow = client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'slow @slow=1500' }] });
    const busy = await until(async () => (await running()) === 1);
    check('429: the tenant has a run in flight', busy);
    const retrying = new OpenAI({ apiKey: KEY, baseURL: `${url}/v1`, maxRetries: 3 });
    const t0 = Date.now();
    const c = await retrying.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'after the wait' }] });
    const took = Date.now() - t0;
    eq('429: the client\'s retry got the answer', c.choices[0].message.content, 'fake-openai heard: after the wait');
    check('429: after waiting Retry-After (1 s)', took >= 900, `${took} ms`);
    await slow;
    const m = (await get('/metrics', ADMIN)).text;
    check('429: counted with the model_route label', /fluxroute_gateway_requests_total\{model_route="chat",code="429"\} [1-9]/.test(m),
      m.split('\n').filter((l) => l.includes('gateway')).join('\n'));
    check('metrics: successes by model_route', /fluxroute_gateway_requests_total\{model_route="fallback",code="200"\} [1-9]/.test(m));
  }

  // ---- GET /v1/models -----------------------------------------------------------------
  {
    const ids = [];
    for await (const m of client.models.list()) ids.push(m.id);
    eq('models: the routes this key may use', ids.sort(), ['chat', 'claude', 'fallback', 'gemini', 'midstream', 'summary']);
    const r = await get('/v1/models');
    const o = JSON.parse(r.text);
    check('models: OpenAI\'s list shape', o.object === 'list' && o.data.every((m) => m.object === 'model' &&
      typeof m.created === 'number' && m.owned_by === 'fluxroute'), r.text);
  }

  // ---- a pipeline route ---------------------------------------------------------------
  {
    const { data: c, response } = await client.chat.completions.create({ model: 'summary',
      messages: [{ role: 'user', content: 'pipeline input' }] }).withResponse();
    eq('pipeline route: the sink step\'s text', c.choices[0].message.content, 'fake-openai heard: polish fake-openai heard: draft pipeline input');
    check('pipeline route: usage of every call', c.usage.prompt_tokens > 0, JSON.stringify(c.usage));
    traces.push(['pipeline', response.headers.get('x-fluxroute-run-id')]);
    const stream = await client.chat.completions.create({ model: 'summary', stream: true,
      messages: [{ role: 'user', content: 'pipeline stream' }] });
    let text = '';
    for await (const ch of stream) text += ch.choices[0]?.delta?.content ?? '';
    eq('pipeline route: streamed as chunks', text, 'fake-openai heard: polish fake-openai heard: draft pipeline stream');
  }

  // ---- replay of gateway traces, offline ----------------------------------------------
  for (const [name, rid] of traces) {
    const t = await get(`/v1/runs/${rid}/trace`);
    check(`replay ${name}: trace downloaded`, t.status === 200, t.text.slice(0, 300));
    writeFileSync(`${TMP}/${name}.trace.json`, t.text);
    const tr = JSON.parse(t.text);
    check(`replay ${name}: the trace embeds its manifest`, typeof tr.manifest === 'string' && tr.manifest.length > 0);
    const env = { ...process.env };
    delete env.GW_OPENAI_KEY;
    const r = spawnSync(FLUXROUTE, ['replay', `${TMP}/${name}.trace.json`, '--json'], { env, encoding: 'utf8', timeout: 60000 });
    let rep = {};
    try { rep = JSON.parse(r.stdout); } catch { /* reported below */ }
    check(`replay ${name}: identical, from the trace alone`, r.status === 0 && rep.identical === true,
      `exit ${r.status}: ${r.stderr}\n${r.stdout.slice(0, 500)}`);
  }
}

try {
  await main();
} catch (e) {
  notOk('the gateway test ran to its end', e.stack || e);
}
for (const c of children) c.kill('SIGTERM');
process.exit(failed ? 1 : 0);
