// Whether an optional component runs (GET /api/health, public): its routes answer 503 otherwise,
// and a module asks first rather than leave a failed request in the browser's console.
import { get } from '../api.js';

let pending = null;

export function running(name) {
  // One health request serves the modules asking at the same moment (the header and the banner).
  pending ??= get('/api/health', { auth: false }).finally(() => setTimeout(() => { pending = null; }, 0));
  return pending.then((h) => h?.components?.[name]?.state === 'running', () => false);
}
