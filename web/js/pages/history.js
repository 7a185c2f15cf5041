// Print history: every print on every printer, searchable and filterable (printer, outcome,
// dates), sortable, paged, with totals for what is shown and a CSV export of the same selection.
// The filters live in the address (#/history?printer=x&outcome=failed...), so reload and the back
// button keep them. Live: `history` frames update rows in place and add new prints on top.
import { ApiError, get } from '../api.js';
import { on } from '../bus.js';
import { colorSwatch, colorText, filamentList } from '../components/filament.js';
import { energyPrice } from '../components/power.js';
import { thumb } from '../components/thumb.js';
import { timelapseButton } from '../components/timelapse-player.js';
import { field, h, scope, setText, show } from '../dom.js';
import { fmtDateTime, fmtDuration, fmtGrams, fmtMeters, fmtNumber, fmtPercent, isNum } from '../format.js';
import { t, tMaybe } from '../i18n.js';
import { icon } from '../icons.js';
import { replaceHash } from '../router.js';
import { printerName, store } from '../store.js';
import { errorText } from '../toast.js';
import { onWsBack } from '../ws.js';

export const OUTCOMES = ['success', 'failed', 'cancelled', 'unknown', 'running'];
const TONE = { success: 'good', failed: 'bad', cancelled: 'warn', unknown: 'idle', running: 'busy' };
const SORTS = ['-started_at', 'started_at', '-duration_s', 'duration_s', 'job', '-job', 'printer', '-printer'];
const PAGE_SIZES = [25, 50, 100];
const DEFAULTS = { q: '', printer: '', outcome: '', from: '', to: '', sort: '-started_at', limit: 50, offset: 0 };
const DATE = /^\d{4}-\d{2}-\d{2}$/;

/** The filters from the address; anything unknown or malformed falls back to the default. */
export function readFilters(hash) {
  const i = hash.indexOf('?');
  const qs = new URLSearchParams(i >= 0 ? hash.slice(i + 1) : '');
  const f = { ...DEFAULTS };
  f.q = (qs.get('q') || '').slice(0, 200);
  f.printer = qs.get('printer') || '';
  f.outcome = OUTCOMES.includes(qs.get('outcome')) ? qs.get('outcome') : '';
  f.from = DATE.test(qs.get('from') || '') ? qs.get('from') : '';
  f.to = DATE.test(qs.get('to') || '') ? qs.get('to') : '';
  f.sort = SORTS.includes(qs.get('sort')) ? qs.get('sort') : DEFAULTS.sort;
  const limit = Number(qs.get('limit'));
  f.limit = PAGE_SIZES.includes(limit) ? limit : DEFAULTS.limit;
  const offset = Number(qs.get('offset'));
  f.offset = Number.isInteger(offset) && offset > 0 ? offset : 0;
  return f;
}

/** Query string of the filters (only what differs from the defaults). */
export function filterQuery(f, { paging = true, sort = true } = {}) {
  const qs = new URLSearchParams();
  if (f.q.trim()) qs.set('q', f.q.trim());
  if (f.printer) qs.set('printer', f.printer);
  if (f.outcome) qs.set('outcome', f.outcome);
  if (f.from) qs.set('from', f.from);
  if (f.to) qs.set('to', f.to);
  if (sort && f.sort !== DEFAULTS.sort) qs.set('sort', f.sort);
  if (paging && f.limit !== DEFAULTS.limit) qs.set('limit', String(f.limit));
  if (paging && f.offset) qs.set('offset', String(f.offset));
  return qs.toString();
}

/** Local midnight of a YYYY-MM-DD in epoch seconds. */
function dayStart(d) {
  const [y, m, day] = d.split('-').map(Number);
  return new Date(y, m - 1, day).getTime() / 1000;
}

/** Would the server list this record under these filters? (for live rows) */
export function matches(rec, f) {
  if (f.printer && rec.printer_id !== f.printer) return false;
  if (f.outcome && rec.outcome !== f.outcome) return false;
  const q = f.q.trim().toLowerCase();
  if (q && !`${rec.job || ''}\n${rec.file || ''}`.toLowerCase().includes(q)) return false;
  if (f.from && !(rec.started_at >= dayStart(f.from))) return false;
  if (f.to && !(rec.started_at < dayStart(f.to) + 86400)) return false;
  return true;
}

export function outcomeLabel(o) {
  return tMaybe(`outcome.${o}`) ?? String(o || '');
}

function jobTitle(r) {
  if (typeof r.job === 'string' && r.job.trim()) return r.job;
  if (typeof r.file === 'string' && r.file) return r.file.split('/').pop();
  return t('history.no_name');
}

function outcomeCell(r) {
  const o = typeof r.outcome === 'string' ? r.outcome : 'unknown';
  const badge = h('span', { class: `badge tone-${TONE[o] || 'idle'}`, testid: 'outcome', dataset: { outcome: o } }, outcomeLabel(o));
  const parts = [badge];
  if (o === 'running') {
    const st = String(r.state || '').toUpperCase();
    const bits = [st === 'PAUSE' ? t('state.PAUSE') : null, isNum(r.progress) ? fmtPercent(r.progress) : null].filter(Boolean);
    if (bits.length) parts.push(h('span', { class: 'outcome-note' }, bits.join(' · ')));
  } else if (typeof r.failure_reason === 'string' && r.failure_reason) {
    parts.push(h('span', { class: o === 'failed' ? 'outcome-reason' : 'outcome-note', testid: 'failure-reason' }, r.failure_reason));
  } else if (o === 'unknown') {
    parts.push(h('span', { class: 'outcome-note' }, t('history.unknown_note')));
  }
  return h('div', { class: 'outcome-cell' }, parts);
}

function durationText(r, now) {
  if (isNum(r.duration_s)) return fmtDuration(r.duration_s);
  if (r.outcome === 'running' && isNum(r.started_at)) return t('history.so_far', { d: fmtDuration(Math.max(0, now - r.started_at)) });
  return '—';
}

let currency = ''; // energy.currency from the config (GET /api/power), once known

/** "0.85 kWh · 0.34 EUR": what a print (or the totals) used, measured by the printer's plug. */
function energyText(kwh, cost) {
  if (!isNum(kwh)) return '—';
  const parts = [t('history.kwh', { kwh: fmtNumber(kwh, kwh < 10 ? 2 : 1) })];
  if (isNum(cost)) parts.push(t('history.cost', { cost: fmtNumber(cost, 2), currency }).trim());
  return parts.join(' · ');
}

function layersText(r) {
  if (isNum(r.layers) && isNum(r.total_layers) && r.total_layers > 0) return `${fmtNumber(r.layers)} / ${fmtNumber(r.total_layers)}`;
  if (isNum(r.total_layers) && r.total_layers > 0) return `— / ${fmtNumber(r.total_layers)}`;
  return '—';
}

function recordRow(r) {
  const now = Date.now() / 1000;
  const title = jobTitle(r);
  const file = typeof r.file === 'string' && r.file ? r.file.split('/').pop() : '';
  const sub = [file && file !== title && !/^plate_\d+\.gcode$/.test(file) ? file : null, isNum(r.plate) ? t('history.plate', { n: r.plate }) : null].filter(Boolean).join(' · ');
  const printer = typeof r.printer_name === 'string' && r.printer_name ? r.printer_name : String(r.printer_id || '');
  const label = (k) => t(`history.col_${k}`);
  return h('tr', { testid: 'history-row', dataset: { id: String(r.id), outcome: r.outcome || '', printer: r.printer_id || '' } },
    h('td', { class: 'thumb-cell' }, thumb(r.thumbnail, { alt: '', cls: 'thumb-sm' })),
    h('td', { class: 'job-cell', 'data-label': label('job') },
      h('span', { class: 'job-title', testid: 'history-job' }, title),
      sub ? h('span', { class: 'job-sub' }, sub) : null, timelapseButton(r)),
    h('td', { 'data-label': label('printer') },
      h('span', { class: 'printer-name', testid: 'history-printer' }, printer),
      r.model && String(r.model).toLowerCase() !== printer.toLowerCase() ? h('span', { class: 'chip' }, String(r.model)) : null),
    h('td', { class: 'nowrap', 'data-label': label('started') }, fmtDateTime(r.started_at)),
    h('td', { class: 'nowrap num', 'data-label': label('duration'), testid: 'history-duration' }, durationText(r, now)),
    h('td', { class: 'outcome-td', 'data-label': label('outcome') }, outcomeCell(r)),
    h('td', { class: 'nowrap num', 'data-label': label('layers') }, layersText(r)),
    h('td', { class: 'filament-td', 'data-label': label('filament') }, filamentList(r.filament)),
    h('td', { class: 'nowrap num', 'data-label': label('energy'), testid: 'history-energy' }, energyText(r.energy_kwh, r.energy_cost)));
}

/** 0 -> "0", 2.46 -> "2.5", 312.4 -> "312" (hours). */
function fmtHours(v) {
  return fmtNumber(Math.round(v * (v < 10 ? 10 : 1)) / (v < 10 ? 10 : 1), v < 10 && Math.round(v * 10) % 10 ? 1 : 0);
}

function totalsPanel() {
  const count = h('strong', { class: 'stat-value', testid: 'total-count' });
  const rate = h('strong', { class: 'stat-value', testid: 'total-success-rate' });
  const hours = h('strong', { class: 'stat-value', testid: 'total-hours' });
  const grams = h('strong', { class: 'stat-value', testid: 'total-grams' });
  const kwh = h('strong', { class: 'stat-value', testid: 'total-energy' });
  const stat = (label, value, hint) => h('div', { class: 'stat' }, h('span', { class: 'stat-label' }, label), value, hint ? h('span', { class: 'stat-hint' }, hint) : null);
  const outcomes = h('ul', { class: 'outcome-counts', testid: 'total-outcomes', 'aria-label': t('history.by_outcome') });
  const filament = h('ul', { class: 'filament-totals', testid: 'total-filament', 'aria-label': t('history.filament_used') });
  const filamentNone = h('p', { class: 'muted', hidden: true }, t('history.no_filament'));
  const el = h('section', { class: 'panel totals', testid: 'history-totals', 'aria-labelledby': 'totals-title' },
    h('div', { class: 'panel-head' }, h('h2', { id: 'totals-title' }, t('history.totals')), h('span', { class: 'page-sub totals-scope' })),
    h('div', { class: 'stats' },
      stat(t('history.prints'), count),
      stat(t('history.success_rate'), rate, t('history.success_rate_hint')),
      stat(t('history.print_hours'), hours),
      stat(t('history.filament_total'), grams),
      stat(t('history.energy_total'), kwh)),
    outcomes,
    h('h3', { class: 'sub-title' }, t('history.filament_used')),
    filament, filamentNone);
  return {
    el,
    paint(tot, filtered) {
      setText(el.querySelector('.totals-scope'), filtered ? t('history.totals_filtered') : t('history.totals_all'));
      setText(count, fmtNumber(tot?.count ?? 0));
      setText(rate, isNum(tot?.success_rate) ? fmtPercent(tot.success_rate * 100) : '—');
      setText(kwh, energyText(tot?.energy_kwh, tot?.energy_cost));
      setText(hours, isNum(tot?.print_hours) ? t('history.hours', { h: fmtHours(tot.print_hours) }) : '—');
      const list = Array.isArray(tot?.filament) ? tot.filament.filter((f) => f && typeof f === 'object') : [];
      const sum = list.reduce((a, f) => a + (isNum(f.grams) ? f.grams : 0), 0);
      setText(grams, list.length ? fmtGrams(sum) : '—');
      const by = tot?.by_outcome && typeof tot.by_outcome === 'object' ? tot.by_outcome : {};
      outcomes.replaceChildren(...OUTCOMES.filter((o) => by[o]).map((o) => h('li', { class: `badge tone-${TONE[o]}`, dataset: { outcome: o } }, `${outcomeLabel(o)} ${fmtNumber(by[o])}`)));
      list.sort((a, b) => (b.grams || 0) - (a.grams || 0));
      filament.replaceChildren(...list.map((f) => h('li', { class: 'filament-total', testid: 'filament-total', dataset: { type: f.type || '', color: f.color || '' } },
        colorSwatch(f.color, 'swatch'),
        h('span', { class: 'ft-main' }, h('strong', {}, f.type || t('filament.unknown_type')), h('span', { class: 'ft-color' }, colorText(f.color))),
        h('span', { class: 'ft-amount' }, h('strong', {}, fmtGrams(f.grams)), isNum(f.meters) ? h('span', {}, fmtMeters(f.meters)) : null))));
      show(filament, list.length > 0);
      show(filamentNone, list.length === 0);
    },
  };
}

export function mount(root) {
  const sc = scope();
  const f = readFilters(location.hash);
  let items = [];
  let total = 0;
  let token = 0;

  // --- filters -----------------------------------------------------------------------------------
  const search = h('input', { type: 'search', name: 'q', value: f.q, maxlength: '200', autocomplete: 'off', placeholder: t('history.search_placeholder'), testid: 'history-search' });
  const printerSel = h('select', { name: 'printer', testid: 'history-printer-filter' });
  const outcomeSel = h('select', { name: 'outcome', testid: 'history-outcome-filter' },
    h('option', { value: '' }, t('history.all_outcomes')),
    OUTCOMES.map((o) => h('option', { value: o }, outcomeLabel(o))));
  outcomeSel.value = f.outcome;
  const fromIn = h('input', { type: 'date', name: 'from', value: f.from, testid: 'history-from' });
  const toIn = h('input', { type: 'date', name: 'to', value: f.to, testid: 'history-to' });
  const sortSel = h('select', { name: 'sort', testid: 'history-sort' },
    SORTS.map((s) => h('option', { value: s }, t(`history.sort.${s}`))));
  sortSel.value = f.sort;
  const reset = h('button', { type: 'button', class: 'btn btn-ghost', testid: 'history-reset' }, icon('x'), t('history.reset'));
  const filters = h('form', { class: 'filters', testid: 'history-filters', role: 'search', 'aria-label': t('history.filters') },
    h('div', { class: 'filter-search' }, field({ label: t('history.search'), input: search })),
    field({ label: t('history.printer'), input: printerSel }),
    field({ label: t('history.outcome'), input: outcomeSel }),
    field({ label: t('history.from'), input: fromIn }),
    field({ label: t('history.to'), input: toIn }),
    h('div', { class: 'only-narrow' }, field({ label: t('history.sort_by'), input: sortSel })),
    h('div', { class: 'filter-actions' }, reset));
  filters.addEventListener('submit', (e) => { e.preventDefault(); apply(); });

  function paintPrinters() {
    const known = new Map(store.list().map((p) => [String(p.id), printerName(p.id)]));
    for (const r of items) if (r.printer_id && !known.has(r.printer_id)) known.set(r.printer_id, r.printer_name || r.printer_id);
    if (f.printer && !known.has(f.printer)) known.set(f.printer, f.printer);
    printerSel.replaceChildren(h('option', { value: '' }, t('history.all_printers')),
      ...[...known].sort((a, b) => a[1].localeCompare(b[1])).map(([id, name]) => h('option', { value: id }, name)));
    printerSel.value = f.printer;
  }

  // --- table ---------------------------------------------------------------------------------------
  const sortable = { job: 'job', printer: 'printer', started: 'started_at', duration: 'duration_s' };
  const headCells = {};
  const th = (key) => {
    const sk = sortable[key];
    const cell = h('th', { scope: 'col', class: key === 'duration' || key === 'layers' ? 'num' : null });
    if (sk) {
      const btn = h('button', { type: 'button', class: 'sort-btn', testid: `sort-${key}` }, h('span', {}, t(`history.col_${key}`)), h('span', { class: 'sort-mark', 'aria-hidden': 'true' }));
      btn.addEventListener('click', () => {
        const cur = f.sort.replace(/^-/, '');
        const desc = f.sort.startsWith('-');
        // Times and durations start newest/longest first; names A to Z.
        const first = sk === 'started_at' || sk === 'duration_s' ? `-${sk}` : sk;
        f.sort = cur === sk ? (desc ? sk : `-${sk}`) : first;
        sortSel.value = f.sort;
        f.offset = 0;
        apply();
      });
      cell.appendChild(btn);
      headCells[sk] = cell;
    } else {
      cell.textContent = t(`history.col_${key}`);
    }
    return cell;
  };
  const tbody = h('tbody', { testid: 'history-rows' });
  const table = h('table', { class: 'table history-table', testid: 'history-table' },
    h('caption', { class: 'sr-only' }, t('history.caption')),
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col', class: 'thumb-cell' }, h('span', { class: 'sr-only' }, t('history.col_picture'))),
      th('job'), th('printer'), th('started'), th('duration'), th('outcome'), th('layers'), th('filament'), th('energy'))),
    tbody);

  function paintSort() {
    const key = f.sort.replace(/^-/, '');
    for (const [sk, cell] of Object.entries(headCells)) {
      const on_ = sk === key;
      if (on_) cell.setAttribute('aria-sort', f.sort.startsWith('-') ? 'descending' : 'ascending');
      else cell.removeAttribute('aria-sort');
      setText(cell.querySelector('.sort-mark'), on_ ? (f.sort.startsWith('-') ? '▼' : '▲') : '');
    }
  }

  // --- paging, count, export ---------------------------------------------------------------------------
  const range = h('span', { class: 'page-range', testid: 'history-range', 'aria-live': 'polite' });
  const prev = h('button', { type: 'button', class: 'btn btn-small', testid: 'history-prev' }, icon('back'), t('history.prev'));
  const next = h('button', { type: 'button', class: 'btn btn-small', testid: 'history-next' }, t('history.next'), icon('play'));
  const sizeSel = h('select', { class: 'page-size', testid: 'history-page-size', 'aria-label': t('history.page_size') },
    PAGE_SIZES.map((n) => h('option', { value: String(n) }, t('history.per_page', { n }))));
  sizeSel.value = String(f.limit);
  const pager = h('nav', { class: 'pager', 'aria-label': t('history.pages'), testid: 'history-pager' }, range, h('span', { class: 'pager-buttons' }, sizeSel, prev, next));
  prev.addEventListener('click', () => { f.offset = Math.max(0, f.offset - f.limit); apply({ scroll: true }); });
  next.addEventListener('click', () => { f.offset += f.limit; apply({ scroll: true }); });
  sizeSel.addEventListener('change', () => { f.limit = Number(sizeSel.value); f.offset = 0; apply(); });

  const csv = h('a', { class: 'btn', testid: 'history-csv', download: '' }, icon('download'), t('history.csv'));
  const countLine = h('p', { class: 'page-sub', testid: 'history-count' });
  const status = h('div', { testid: 'history-status', 'aria-live': 'polite' });
  const empty = h('div', { class: 'panel empty', testid: 'history-empty', hidden: true });
  const totals = totalsPanel();
  const newNote = h('button', { type: 'button', class: 'btn btn-small new-note', testid: 'history-new', hidden: true });
  let unseen = 0;
  newNote.addEventListener('click', () => {
    unseen = 0;
    f.offset = 0;
    if (f.sort !== DEFAULTS.sort) { f.sort = DEFAULTS.sort; sortSel.value = f.sort; }
    apply();
  });

  const listPanel = h('section', { class: 'panel table-panel', 'aria-label': t('history.caption') }, newNote, table, pager);
  const page = h('div', { class: 'page history-page', testid: 'history-page' },
    h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, t('history.title')), countLine), csv),
    h('section', { class: 'panel filters-panel', 'aria-label': t('history.filters') }, filters),
    totals.el, status, empty, listPanel);
  root.appendChild(page);
  document.title = `${t('history.title')} · bambu-edge`;
  energyPrice().then((e) => {
    currency = typeof e?.currency === 'string' ? e.currency : '';
    if (currency && page.isConnected) { paintRows(); loadTotals({ force: true }); }
  });

  function paintRows() {
    tbody.replaceChildren(...items.map(recordRow));
    paintAround();
  }

  /** Everything around the rows: the empty state, range, pager, count and "N new prints". */
  function paintAround() {
    const filtered = Boolean(filterQuery(f, { paging: false, sort: false }));
    show(listPanel, items.length > 0);
    show(empty, items.length === 0);
    if (!items.length) {
      empty.replaceChildren(icon('history', 'icon empty-icon'),
        h('h2', {}, filtered ? t('history.none_match') : t('history.none_title')),
        h('p', {}, filtered ? t('history.none_match_body') : t('history.none_body')),
        filtered ? h('button', { type: 'button', class: 'btn', onclick: () => clearFilters() }, t('history.reset')) : null);
    }
    const from = total ? f.offset + 1 : 0;
    const to = f.offset + items.length;
    setText(range, t('history.range', { from: fmtNumber(from), to: fmtNumber(to), total: fmtNumber(total) }));
    prev.disabled = f.offset === 0;
    next.disabled = f.offset + items.length >= total;
    setText(countLine, t('history.count', { count: total, n: fmtNumber(total) }));
    show(newNote, unseen > 0);
    if (unseen > 0) setText(newNote, t('history.new_prints', { count: unseen }));
    paintSort();
  }

  // Totals depend on the filters only: paging or sorting does not fetch them again.
  let totalsFor = null; // the filters the totals shown (or on their way) are for
  let totalsToken = 0;
  async function loadTotals({ force = false } = {}) {
    const qs = filterQuery(f, { paging: false, sort: false });
    if (!force && qs === totalsFor) return;
    totalsFor = qs;
    const my = ++totalsToken;
    try {
      const tot = await get(`/api/history/totals?${qs}`);
      if (my === totalsToken) totals.paint(tot, Boolean(qs));
    } catch {
      if (my === totalsToken) totalsFor = null; // the list shows the error; the next load tries again
    }
  }

  async function load({ scroll = false } = {}) {
    const my = ++token;
    const qs = new URLSearchParams(filterQuery(f, { paging: false }));
    qs.set('limit', String(f.limit));
    qs.set('offset', String(f.offset));
    page.setAttribute('aria-busy', 'true');
    try {
      const res = await get(`/api/history?${qs}`);
      if (my !== token) return;
      items = Array.isArray(res?.items) ? res.items.filter((r) => r && typeof r === 'object') : [];
      total = isNum(res?.total) ? res.total : items.length;
      if (items.length === 0 && f.offset > 0 && total > 0) {
        f.offset = Math.max(0, Math.floor((total - 1) / f.limit) * f.limit); // past the end: last page
        load({ scroll });
        return;
      }
      status.replaceChildren();
      paintPrinters();
      paintRows();
      if (scroll) listPanel.scrollIntoView({ block: 'start' });
    } catch (e) {
      if (my !== token || (e instanceof ApiError && e.status === 401)) return;
      status.replaceChildren(h('div', { class: 'notice notice-bad', role: 'alert', testid: 'history-error' },
        h('p', { class: 'notice-title' }, icon('alert'), t('history.load_failed')),
        h('p', {}, errorText(e)),
        h('button', { type: 'button', class: 'btn btn-small', onclick: () => load() }, icon('refresh'), t('common.retry'))));
    } finally {
      if (my === token) page.removeAttribute('aria-busy');
    }
    loadTotals();
  }

  function apply(opts) {
    const qs = filterQuery(f);
    replaceHash(qs ? `/history?${qs}` : '/history');
    const sel = filterQuery(f, { paging: false });
    csv.href = `/api/history.csv${sel ? `?${sel}` : ''}`;
    unseen = 0;
    load(opts);
  }

  function clearFilters() {
    Object.assign(f, { ...DEFAULTS, limit: f.limit });
    search.value = '';
    printerSel.value = '';
    outcomeSel.value = '';
    fromIn.value = '';
    toIn.value = '';
    sortSel.value = f.sort;
    apply();
  }

  let typing = null;
  search.addEventListener('input', () => {
    clearTimeout(typing);
    typing = setTimeout(() => { f.q = search.value; f.offset = 0; apply(); }, 300);
  });
  sc.add(() => clearTimeout(typing));
  printerSel.addEventListener('change', () => { f.printer = printerSel.value; f.offset = 0; apply(); });
  outcomeSel.addEventListener('change', () => { f.outcome = outcomeSel.value; f.offset = 0; apply(); });
  sortSel.addEventListener('change', () => { f.sort = sortSel.value; f.offset = 0; apply(); });
  const dateChange = () => {
    f.from = DATE.test(fromIn.value) ? fromIn.value : '';
    f.to = DATE.test(toIn.value) ? toIn.value : '';
    f.offset = 0;
    apply();
  };
  fromIn.addEventListener('change', dateChange);
  toIn.addEventListener('change', dateChange);
  reset.addEventListener('click', clearFilters);

  // --- live ---------------------------------------------------------------------------------------
  let totalsTimer = null;
  const refreshTotals = () => {
    clearTimeout(totalsTimer);
    totalsTimer = setTimeout(() => loadTotals({ force: true }), 800);
  };
  sc.add(() => clearTimeout(totalsTimer));
  sc.add(on('ws:history', (msg) => {
    const r = msg?.record;
    if (!r || typeof r !== 'object' || !isNum(r.id)) return;
    const i = items.findIndex((x) => x.id === r.id);
    if (i >= 0) {
      items[i] = r;
      const old = tbody.querySelector(`tr[data-id="${r.id}"]`);
      const fresh = recordRow(r);
      if (old) old.replaceWith(fresh); else paintRows();
    } else if (matches(r, f)) {
      if (f.offset === 0 && f.sort === DEFAULTS.sort) {
        items.unshift(r);
        tbody.prepend(recordRow(r));
        if (items.length > f.limit) { items.pop(); tbody.lastElementChild.remove(); }
        total += 1;
        paintAround();
      } else if (msg.action === 'started') {
        unseen += 1; // not on this page: say so, do not move what the user is looking at
        paintAround();
      }
    } else {
      return;
    }
    if (msg.action === 'ended' || msg.action === 'started') refreshTotals();
  }));
  // Live durations of running prints ("12 min so far").
  sc.interval(() => {
    for (const r of items) {
      if (r.outcome !== 'running') continue;
      const cell = tbody.querySelector(`tr[data-id="${r.id}"] [data-testid=history-duration]`);
      if (cell) setText(cell, durationText(r, Date.now() / 1000));
    }
  }, 30000);
  // Frames missed while the WebSocket was down: load again once it is back.
  sc.add(onWsBack(() => { loadTotals({ force: true }); load(); }));
  sc.add(store.onList(() => paintPrinters()));

  paintPrinters();
  apply();
  return () => { token += 1; sc.dispose(); document.title = 'bambu-edge'; };
}
