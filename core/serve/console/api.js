// The API client: the key lives in sessionStorage (this tab only, gone when it closes)
// and goes out as a Bearer header, never in a URL.  Only the page's own origin is asked.
const KEY = 'fluxroute.key';

export function getKey() {
  return sessionStorage.getItem(KEY);
}
export function setKey(k) {
  sessionStorage.setItem(KEY, k);
}
export function clearKey() {
  sessionStorage.removeItem(KEY);
}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// Called with the error when the server refuses the key (401): the app logs out.
let onUnauthorized = () => {};
export function whenUnauthorized(f) {
  onUnauthorized = f;
}

function headers(extra) {
  const h = Object.assign({}, extra);
  const k = getKey();
  if (k) h.Authorization = 'Bearer ' + k;
  return h;
}

async function failure(r) {
  const text = await r.text();
  let e = {};
  try {
    e = JSON.parse(text).error || {};
  } catch (_) { /* not JSON */ }
  return new ApiError(r.status, e.code || 'http_' + r.status,
    e.message || text.slice(0, 300) || r.statusText);
}

// GETs asked for before the page that reads them exists (the first page's data, asked
// while the document is still parsed), each taken by the first api('GET', path).
const early = new Map();
export function prefetch(path) {
  const p = api('GET', path, undefined, {quiet401: true});
  p.catch(() => {}); // its reader sees the error; none left unhandled if it never comes
  early.set(path, p);
}

// api('GET', '/v1/runs') → the parsed JSON body; throws ApiError for a non-2xx answer.
export async function api(method, path, body, opts = {}) {
  if (method === 'GET' && early.has(path) && !opts.raw && !opts.signal) {
    const p = early.get(path);
    early.delete(path);
    return p.catch((e) => {
      if (e.status === 401 && !opts.quiet401) onUnauthorized(e);
      throw e;
    });
  }
  const init = {method, headers: headers(body === undefined ? {} : {'Content-Type': 'application/json'}),
    cache: 'no-store', credentials: 'omit', signal: opts.signal};
  if (body !== undefined) init.body = JSON.stringify(body);
  const r = await fetch(path, init);
  if (!r.ok) {
    const e = await failure(r);
    if (r.status === 401 && !opts.quiet401) onUnauthorized(e);
    throw e;
  }
  if (opts.raw) return r;
  const text = await r.text();
  return text ? JSON.parse(text) : null;
}

// POST path with Accept: text/event-stream and call onEvent(name, data) for each event
// (data parsed as JSON when it is).  EventSource cannot send a header, so fetch reads
// the stream.  Resolves when the stream ends.
export async function sse(path, body, onEvent, signal) {
  const r = await fetch(path, {method: 'POST', signal, cache: 'no-store', credentials: 'omit',
    headers: headers({'Content-Type': 'application/json', Accept: 'text/event-stream'}),
    body: JSON.stringify(body)});
  if (!r.ok) {
    const e = await failure(r);
    if (r.status === 401) onUnauthorized(e);
    throw e;
  }
  const reader = r.body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  for (;;) {
    const {value, done} = await reader.read();
    if (done) break;
    buf += dec.decode(value, {stream: true}).replace(/\r\n?/g, '\n');
    let at;
    while ((at = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, at);
      buf = buf.slice(at + 2);
      let name = 'message', data = [];
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) continue;
        const c = line.indexOf(':');
        const f = c < 0 ? line : line.slice(0, c);
        const v = c < 0 ? '' : line.slice(c + 1).replace(/^ /, '');
        if (f === 'event') name = v;
        else if (f === 'data') data.push(v);
      }
      if (!data.length) continue;
      let d = data.join('\n');
      try {
        d = JSON.parse(d);
      } catch (_) { /* text */ }
      onEvent(name, d);
    }
  }
}

// GET /v1/whoami: the key's {key_id, tenant, namespace, role, via, may: {run, validate,
// replay, admin}} (may: the server's policy for the role; a manifest's rbac can narrow it,
// and the server still checks every real run).
export function whoami() {
  return api('GET', '/v1/whoami', undefined, {quiet401: true});
}

// Saves a JSON value as a file download (a Blob URL, revoked after).
export function download(name, value) {
  const blob = new Blob([JSON.stringify(value, null, 2) + '\n'], {type: 'application/json'});
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
