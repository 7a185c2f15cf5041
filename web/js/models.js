// What each printer model has. The API's `model` is detected from the serial or get_version,
// or set in the config. Chamber temperature: X1 family, H2 family, P2S, X2D. P1/A1 have none
// (they report a meaningless constant), so their chamber value is never shown.

const norm = (m) => String(m || '').toUpperCase().replace(/BAMBU\s*LAB/g, '').replace(/[^A-Z0-9]/g, '');

const WITH_CHAMBER = new Set(['X1', 'X1C', 'X1CARBON', 'X1E', 'H2D', 'H2DPRO', 'H2S', 'H2C', 'P2S', 'X2D']);
const WITHOUT_CHAMBER = new Set(['P1P', 'P1S', 'A1', 'A1MINI', 'A1M', 'A2L']);

/** true / false; for an unknown model: only when the printer sends a chamber value at all. */
export function hasChamber(model, temps) {
  const m = norm(model);
  if (WITH_CHAMBER.has(m)) return true;
  if (WITHOUT_CHAMBER.has(m)) return false;
  const c = temps?.chamber?.current;
  return typeof c === 'number' && Number.isFinite(c);
}

/** Scale maxima for the gauges. */
export function tempMax(kind, model) {
  const m = norm(model);
  if (kind === 'nozzle') return m.startsWith('H2') || m === 'X1E' ? 350 : 300;
  if (kind === 'bed') return 120;
  return m.startsWith('H2') || m === 'X1E' ? 70 : 60;
}

/** Models offered in the "add printer" form (empty = detect from the serial). */
export const MODEL_CHOICES = ['X1C', 'X1', 'X1E', 'P1P', 'P1S', 'P2S', 'A1', 'A1 mini', 'A2L', 'H2D', 'H2D Pro', 'H2S', 'H2C', 'X2D'];
