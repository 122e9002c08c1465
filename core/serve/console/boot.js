// What the first load needs before anything else: the hash route, and the runs list's
// first page asked for at once when the page opens on it with a key.  app.js imports this
// module first, so in the served page (one script in <head>, core/serve/console_embed.sh)
// the request leaves before the other pages' modules are evaluated and before the body
// is parsed; runsPage's first api('GET') takes its answer.
import {getKey, prefetch} from './api.js';
import {runsFilter, runsPath} from './runs.js';

const PAGES = ['runs', 'run', 'live', 'compare', 'manifests', 'usage'];

// The route of location.hash: {page, nav (the navigation link to mark), arg}.
export function parseHash() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  if (parts[0] === 'runs' && parts[1]) return {page: 'run', nav: 'runs', arg: parts[1]};
  if (parts[0] === 'manifests' && parts[1]) return {page: 'manifests', nav: 'manifests', arg: parts[1]};
  if (PAGES.includes(parts[0])) return {page: parts[0], nav: parts[0], arg: null};
  return {page: 'runs', nav: 'runs', arg: null};
}

if (getKey() && parseHash().page === 'runs') prefetch(runsPath(runsFilter(), null));
