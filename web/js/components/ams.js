// AMS units and their trays: colour swatch (#RRGGBBAA from the printer, validated), filament
// type, remaining %. Compact for cards, detailed for the printer page. The list is rebuilt only
// when the `ams` field changed (a changed list arrives whole).
import { clear, h, setText, toggleClass } from '../dom.js';
import { fmtNumber, fmtPercent, fmtTemp, isNum, safeColor } from '../format.js';
import { t } from '../i18n.js';
import { icon } from '../icons.js';

const LETTERS = 'ABCDEFGH';

function unitName(unit) {
  if (unit === 'ext') return t('ams.external');
  const n = Number(unit);
  if (!Number.isInteger(n) || n < 0) return t('ams.unit', { n: String(unit ?? '?') });
  if (n >= 128) return t('ams.unit_ht', { n: LETTERS[n - 128] || String(n - 127) });
  return t('ams.unit', { n: LETTERS[n] || String(n + 1) });
}

function slotName(unit, slot) {
  if (unit === 'ext') return t('ams.ext_short');
  const n = Number(unit);
  const sl = Number(slot);
  if (Number.isInteger(n) && n >= 128) {
    // AMS HT: one slot per unit, labelled like the printer does ("HT-A").
    return `HT-${LETTERS[n - 128] || n - 127}${Number.isInteger(sl) && sl > 0 ? sl + 1 : ''}`;
  }
  const letter = Number.isInteger(n) ? LETTERS[n] : null;
  return `${letter || '?'}${Number.isInteger(sl) ? sl + 1 : '?'}`;
}

function remainOf(tray) {
  return isNum(tray.remain) && tray.remain >= 0 ? Math.min(100, tray.remain) : null;
}

function swatch(tray) {
  const col = safeColor(tray.color);
  const sw = h('span', { class: 'swatch', 'aria-hidden': 'true' });
  if (col && col.alpha > 0) {
    const fill = h('span', { class: 'swatch-fill' });
    fill.style.backgroundColor = col.css; // CSSOM, not a style= attribute: fine under the CSP
    sw.appendChild(fill);
  }
  return sw;
}

function describe(unit, tray) {
  const parts = [t('ams.slot', { slot: slotName(unit, tray.slot) })];
  if (!tray.type) {
    parts.push(t('ams.empty'));
  } else {
    parts.push(String(tray.type));
    const col = safeColor(tray.color);
    if (col) parts.push(col.alpha > 0 ? col.rgb : t('ams.no_colour'));
    const r = remainOf(tray);
    parts.push(r === null ? t('ams.remain_unknown') : t('ams.remain', { v: fmtPercent(r) }));
    if (tray.active) parts.push(t('ams.active'));
  }
  return parts.join(', ');
}

function compactTray(unit, tray) {
  const r = remainOf(tray);
  const empty = !tray.type;
  const fill = h('span', { class: 'remain-fill' });
  if (r !== null) fill.style.width = `${r}%`;
  const label = describe(unit, tray);
  return h('li', {
    class: ['tray', empty && 'is-empty', tray.active && 'is-active', r !== null && r <= 15 && 'is-low'],
    testid: 'ams-tray', dataset: { slot: String(tray.slot ?? ''), active: tray.active ? 'true' : 'false' },
    title: label, 'aria-label': label,
  },
  swatch(tray),
  h('span', { class: 'tray-type', 'aria-hidden': 'true' }, empty ? '—' : String(tray.type)),
  h('span', { class: 'remain-bar', 'aria-hidden': 'true' }, fill));
}

function detailTray(unit, tray) {
  const r = remainOf(tray);
  const empty = !tray.type;
  const col = safeColor(tray.color);
  const fill = h('span', { class: 'remain-fill' });
  if (r !== null) fill.style.width = `${r}%`;
  return h('li', {
    class: ['tray-row', empty && 'is-empty', tray.active && 'is-active', r !== null && r <= 15 && 'is-low'],
    testid: 'ams-tray', dataset: { slot: String(tray.slot ?? ''), active: tray.active ? 'true' : 'false' },
    'aria-label': describe(unit, tray),
  },
  swatch(tray),
  h('div', { class: 'tray-row-main', 'aria-hidden': 'true' },
    h('div', { class: 'tray-row-title' },
      h('span', { class: 'chip' }, slotName(unit, tray.slot)),
      h('span', {}, empty ? t('ams.empty') : String(tray.type)),
      !empty && typeof tray.sub_brand === 'string' && tray.sub_brand && tray.sub_brand !== tray.type ? h('span', { class: 'tray-sub' }, tray.sub_brand) : null,
      tray.active ? h('span', { class: 'badge tone-good' }, t('ams.active')) : null),
    empty ? null : h('div', { class: 'tray-row-sub' }, col ? (col.alpha > 0 ? col.rgb : t('ams.no_colour')) : '—'),
    empty ? null : h('span', { class: 'remain-bar' }, fill)),
  h('span', { class: 'tray-row-pct', 'aria-hidden': 'true' }, empty ? '' : r === null ? '?' : fmtPercent(r)));
}

function unitHead(u, detailed) {
  const bits = [h('span', { class: 'ams-unit-name' }, unitName(u.unit))];
  if (isNum(u.temp)) bits.push(h('span', {}, fmtTemp(u.temp)));
  if (isNum(u.humidity)) {
    const words = t('ams.humidity', { v: fmtNumber(u.humidity) });
    bits.push(detailed
      ? h('span', { title: t('ams.humidity_hint') }, words)
      : h('span', { class: 'ams-hum', title: words }, icon('drop', 'icon icon-xs'), h('span', { class: 'sr-only' }, words), h('span', { 'aria-hidden': 'true' }, fmtNumber(u.humidity))));
  }
  return h('div', { class: 'ams-unit-head' }, bits);
}

/** createAms({detailed}) -> {el, update(amsList, live)} */
export function createAms({ detailed = false } = {}) {
  const el = h('div', { class: detailed ? 'ams ams-detail-wrap' : 'ams', testid: 'ams' });
  let lastKey = null;

  function update(list, live = true, external = null) {
    const units = Array.isArray(list) ? list.filter((u) => u && typeof u === 'object') : [];
    // The external spool (vt_tray) is shown like a one-slot unit when it holds filament.
    if (external && typeof external === 'object' && external.type) {
      units.push({ unit: 'ext', trays: [{ ...external, slot: 0 }] });
    }
    const key = JSON.stringify(units);
    toggleClass(el, 'is-stale', !live);
    if (key === lastKey) return;
    lastKey = key;
    clear(el);
    el.hidden = units.length === 0 && !detailed;
    if (!units.length) {
      if (detailed) el.appendChild(h('p', { class: 'page-sub' }, t('ams.none')));
      return;
    }
    const wrap = h('div', { class: detailed ? 'ams-detail' : 'ams-units' });
    for (const u of units) {
      const trays = Array.isArray(u.trays) ? u.trays.filter((x) => x && typeof x === 'object') : [];
      const list_ = h('ul', { class: detailed ? 'list tray-rows' : 'ams-trays', 'aria-label': unitName(u.unit) },
        trays.map((tr) => (detailed ? detailTray(u.unit, tr) : compactTray(u.unit, tr))));
      wrap.appendChild(h('section', { class: 'ams-unit', testid: 'ams-unit', dataset: { unit: String(u.unit ?? '') }, 'aria-label': unitName(u.unit) },
        unitHead(u, detailed), list_));
    }
    el.appendChild(wrap);
  }
  return { el, update, relabel() { lastKey = null; } };
}
