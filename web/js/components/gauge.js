// A temperature gauge: 270° arc (SVG) with the current value, a tick for the target when there is
// one (null target -> no tick), and the target in words below. Not live -> "—", no arc, no tick.
import { h, s, setAttr, setText, toggleClass } from '../dom.js';
import { fmtNumber, fmtTemp, isNum } from '../format.js';
import { t } from '../i18n.js';

const CX = 50;
const CY = 48;
const R = 38;
const START = 135; // degrees, screen coordinates (y down): bottom-left, clockwise over the top
const SWEEP = 270;

function polar(deg, r = R) {
  const a = (deg * Math.PI) / 180;
  return [CX + r * Math.cos(a), CY + r * Math.sin(a)];
}

function arcPath() {
  const [x0, y0] = polar(START);
  const [x1, y1] = polar(START + SWEEP);
  return `M ${x0.toFixed(2)} ${y0.toFixed(2)} A ${R} ${R} 0 1 1 ${x1.toFixed(2)} ${y1.toFixed(2)}`;
}

/** createGauge('nozzle', 300) -> {el, update(current, target, live)} */
export function createGauge(kind, max, testid = `temp-${kind}`) {
  const d = arcPath();
  const track = s('path', { class: 'gauge-track', d, fill: 'none', 'stroke-width': 8, 'stroke-linecap': 'round', pathLength: 100 });
  const arc = s('path', { class: 'gauge-arc', d, fill: 'none', 'stroke-width': 8, 'stroke-linecap': 'round', pathLength: 100, 'stroke-dasharray': '0 100' });
  const mark = s('line', { class: 'gauge-mark', 'stroke-width': 3, 'stroke-linecap': 'round', visibility: 'hidden' });
  const value = s('text', { class: 'gauge-value live-value', x: CX, y: CY + 6, 'text-anchor': 'middle', testid: `${testid}-value` }, '—');
  const unit = s('text', { class: 'gauge-unit', x: CX, y: CY + 22, 'text-anchor': 'middle' }, '°C');
  const svg = s('svg', { class: 'gauge-svg', viewBox: '0 0 100 86', 'aria-hidden': 'true', focusable: 'false' }, track, arc, mark, value, unit);
  const label = h('div', { class: 'gauge-label' });
  const target = h('div', { class: 'gauge-target live-value', testid: `${testid}-target` });
  const el = h('div', { class: `gauge gauge-${kind}`, role: 'img', testid }, svg, label, target);

  let last = '';
  function update(current, tgt, live = true) {
    const cur = live && isNum(current) ? current : null;
    const tg = live && isNum(tgt) ? tgt : null;
    const key = `${cur}|${tg}|${live}`;
    if (key === last) return;
    last = key;
    const name = t(`temp.${kind}`);
    setText(label, name);
    setText(value, cur === null ? '—' : fmtNumber(cur));
    const frac = cur === null ? 0 : Math.max(0, Math.min(1, cur / max));
    setAttr(arc, 'stroke-dasharray', `${(frac * 100).toFixed(2)} 100`);
    if (tg !== null && tg > 0) {
      const deg = START + SWEEP * Math.max(0, Math.min(1, tg / max));
      const [x0, y0] = polar(deg, R - 7);
      const [x1, y1] = polar(deg, R + 7);
      setAttr(mark, 'x1', x0.toFixed(2)); setAttr(mark, 'y1', y0.toFixed(2));
      setAttr(mark, 'x2', x1.toFixed(2)); setAttr(mark, 'y2', y1.toFixed(2));
      setAttr(mark, 'visibility', 'visible');
    } else {
      setAttr(mark, 'visibility', 'hidden');
    }
    // Target in words: null -> nothing; 0 -> heater off; otherwise the value.
    let tText = '';
    if (!live) tText = '';
    else if (tg === null) tText = '';
    else if (tg <= 0) tText = t('temp.off');
    else tText = t('temp.target', { v: fmtTemp(tg) });
    setText(target, tText);
    toggleClass(el, 'is-heating', cur !== null && tg !== null && tg > 0 && Math.abs(cur - tg) > 3);
    toggleClass(el, 'is-stale', !live);
    el.dataset.current = cur === null ? '' : String(cur);
    el.dataset.target = tg === null ? '' : String(tg);
    const parts = [name, cur === null ? t('temp.no_value') : fmtTemp(cur, 1)];
    if (tText) parts.push(tText);
    el.setAttribute('aria-label', parts.join(', '));
  }
  update(null, null, false);
  return { el, update, relabel() { last = ''; } };
}
