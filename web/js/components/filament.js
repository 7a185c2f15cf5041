// Filament as people recognise it: a colour swatch, the type, and how much. Used by history
// (per print and in the totals) and the queue (per plate). Colours come from printers and files:
// only #RRGGBB(AA) becomes a CSS colour (safeColor), set through the CSSOM (CSP: no style=).
import { h } from '../dom.js';
import { fmtGrams, fmtMeters, isNum, safeColor } from '../format.js';
import { t } from '../i18n.js';

/** A round colour swatch (decorative; the words next to it say the colour). */
export function colorSwatch(color, cls = 'swatch swatch-sm') {
  const col = safeColor(color);
  const sw = h('span', { class: cls, 'aria-hidden': 'true' });
  if (col && col.alpha > 0) {
    const fill = h('span', { class: 'swatch-fill' });
    fill.style.backgroundColor = col.css;
    sw.appendChild(fill);
  }
  return sw;
}

/** "#FF6A13" for a colour, or words when there is none. */
export function colorText(color) {
  const col = safeColor(color);
  if (!col) return t('filament.no_colour');
  return col.alpha > 0 ? col.rgb : t('filament.transparent');
}

/** One filament: {type, color, grams|used_g, meters|used_m}. */
export function filamentItem(f, { meters = false } = {}) {
  const type = typeof f?.type === 'string' && f.type ? f.type : t('filament.unknown_type');
  const grams = isNum(f?.grams) ? f.grams : f?.used_g;
  const m = isNum(f?.meters) ? f.meters : f?.used_m;
  const amount = [isNum(grams) ? fmtGrams(grams) : null, meters && isNum(m) ? fmtMeters(m) : null].filter(Boolean).join(' · ');
  return h('li', { class: 'filament', testid: 'filament', title: `${type} ${colorText(f?.color)}`, dataset: { type, color: safeColor(f?.color)?.rgb || '' } },
    colorSwatch(f?.color),
    h('span', { class: 'filament-type' }, type),
    h('span', { class: 'sr-only' }, colorText(f?.color)),
    amount ? h('span', { class: 'filament-amount' }, amount) : null);
}

/** A list of filaments, or a dash when there are none. */
export function filamentList(list, opts = {}) {
  const items = Array.isArray(list) ? list.filter((f) => f && typeof f === 'object') : [];
  if (!items.length) return h('span', { class: 'muted' }, '—');
  return h('ul', { class: 'filaments' }, items.map((f) => filamentItem(f, opts)));
}
