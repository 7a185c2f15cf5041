// Temperature chart of the last hour on <canvas>: nozzle, bed, chamber (solid) and targets
// (dashed). Gaps in the data (printer offline) stay gaps. Hover/touch shows the values.
import { h } from '../dom.js';
import { fmtClock, fmtTemp, isNum } from '../format.js';
import { t } from '../i18n.js';
import { onThemeChange } from '../theme.js';

const WINDOW_S = 3600;
const GAP_S = 35; // points are 10 s apart; a longer pause is drawn as a gap
const SERIES = [
  { key: 'nozzle', color: '--t-nozzle' },
  { key: 'nozzle_target', color: '--t-nozzle', dashed: true },
  { key: 'bed', color: '--t-bed' },
  { key: 'bed_target', color: '--t-bed', dashed: true },
  { key: 'chamber', color: '--t-chamber' },
];

/** createChart({chamber}) -> {el, setData({fields, points}), push(obj), setChamber(bool), destroy()} */
export function createChart({ chamber = true } = {}) {
  const canvas = h('canvas', { testid: 'temp-chart-canvas' });
  const tip = h('div', { class: 'chart-tip', hidden: true, 'aria-hidden': 'true' });
  const empty = h('div', { class: 'chart-empty', hidden: true }, t('chart.empty'));
  // CSS colours are light-dark() pairs; a canvas cannot read those, so a styled element resolves them.
  const probe = h('span', { hidden: true, 'aria-hidden': 'true' });
  const wrap = h('div', { class: 'chart-wrap' }, canvas, tip, empty, probe);
  const legendItem = (cls, label, dashed) => h('span', { class: 'legend-item' }, h('span', { class: `legend-swatch legend-${cls}${dashed ? ' dashed' : ''}` }), label);
  const chamberLegend = legendItem('chamber', t('temp.chamber'));
  const legend = h('div', { class: 'chart-legend', 'aria-hidden': 'true' },
    legendItem('nozzle', t('temp.nozzle')), legendItem('bed', t('temp.bed')), chamberLegend,
    legendItem('nozzle', t('chart.targets'), true));
  const el = h('div', { class: 'chart', role: 'img', testid: 'temp-chart' }, wrap, legend);

  let rows = []; // [{t, nozzle, nozzle_target, bed, bed_target, chamber}]
  let withChamber = chamber;
  let hoverX = null;
  let raf = 0;

  function setData(data) {
    const fields = Array.isArray(data?.fields) ? data.fields : [];
    const pts = Array.isArray(data?.points) ? data.points : [];
    const idx = Object.fromEntries(fields.map((f, i) => [f, i]));
    rows = [];
    for (const p of pts) {
      if (!Array.isArray(p)) continue;
      const r = { t: p[idx.t] };
      if (!isNum(r.t)) continue;
      for (const s of SERIES) r[s.key] = isNum(p[idx[s.key]]) ? p[idx[s.key]] : null;
      rows.push(r);
    }
    rows.sort((a, b) => a.t - b.t);
    schedule();
  }

  function push(r) {
    if (!isNum(r?.t)) return;
    if (rows.length && r.t - rows[rows.length - 1].t < 9) return;
    rows.push(r);
    const cutoff = r.t - WINDOW_S - 60;
    while (rows.length && rows[0].t < cutoff) rows.shift();
    schedule();
  }

  function setChamber(v) {
    withChamber = v;
    chamberLegend.hidden = !v;
    schedule();
  }
  setChamber(chamber);

  function schedule() {
    if (!raf) raf = requestAnimationFrame(() => { raf = 0; draw(); });
  }

  function summary() {
    const last = rows[rows.length - 1];
    if (!last) return t('chart.empty');
    const parts = [t('chart.title')];
    if (isNum(last.nozzle)) parts.push(`${t('temp.nozzle')} ${fmtTemp(last.nozzle)}`);
    if (isNum(last.bed)) parts.push(`${t('temp.bed')} ${fmtTemp(last.bed)}`);
    if (withChamber && isNum(last.chamber)) parts.push(`${t('temp.chamber')} ${fmtTemp(last.chamber)}`);
    return parts.join(', ');
  }

  function draw() {
    const w = wrap.clientWidth;
    const hgt = wrap.clientHeight;
    if (!w || !hgt) return;
    const dpr = window.devicePixelRatio || 1;
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(hgt * dpr)) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(hgt * dpr);
    }
    const ctx = canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, hgt);
    const css = getComputedStyle(el);
    const v = (name) => { probe.style.color = `var(${name})`; return getComputedStyle(probe).color || '#888'; };
    const font = css.getPropertyValue('font-family');
    el.setAttribute('aria-label', summary());
    empty.hidden = rows.length > 0;

    const now = rows.length ? Math.max(Date.now() / 1000, rows[rows.length - 1].t) : Date.now() / 1000;
    const t0 = now - WINDOW_S;
    const keys = SERIES.filter((s) => withChamber || s.key !== 'chamber');
    let max = 0;
    for (const r of rows) for (const s of keys) if (isNum(r[s.key]) && r[s.key] > max) max = r[s.key];
    const step = max > 150 ? 50 : 25;
    const ymax = Math.max(50, Math.ceil((max + 5) / step) * step);
    const L = 38; const R = 10; const T = 10; const B = 24;
    const pw = w - L - R; const ph = hgt - T - B;
    const X = (ts) => L + ((ts - t0) / WINDOW_S) * pw;
    const Y = (val) => T + ph - (val / ymax) * ph;

    // grid + axis labels
    ctx.font = `11px ${font}`;
    ctx.fillStyle = v('--muted');
    ctx.strokeStyle = v('--border');
    ctx.lineWidth = 1;
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    for (let y = 0; y <= ymax; y += step) {
      const py = Math.round(Y(y)) + 0.5;
      ctx.beginPath(); ctx.moveTo(L, py); ctx.lineTo(L + pw, py); ctx.stroke();
      ctx.fillText(`${y}°`, L - 6, py);
    }
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    const first = Math.ceil(t0 / 900) * 900;
    for (let ts = first; ts <= now; ts += 900) {
      const px = Math.round(X(ts)) + 0.5;
      ctx.beginPath(); ctx.moveTo(px, T); ctx.lineTo(px, T + ph); ctx.stroke();
      if (px > L + 16 && px < L + pw - 16) ctx.fillText(fmtClock(ts), px, T + ph + 6);
    }

    // series
    for (const s of keys) {
      ctx.strokeStyle = v(s.color);
      ctx.lineWidth = s.dashed ? 1.5 : 2.2;
      ctx.setLineDash(s.dashed ? [5, 4] : []);
      ctx.globalAlpha = s.dashed ? 0.75 : 1;
      ctx.lineJoin = 'round';
      ctx.beginPath();
      let pen = false;
      let prevT = null;
      for (const r of rows) {
        const val = r[s.key];
        if (r.t < t0 - 20) { prevT = r.t; continue; }
        if (!isNum(val) || (s.dashed && val <= 0)) { pen = false; prevT = r.t; continue; }
        if (prevT !== null && r.t - prevT > GAP_S) pen = false;
        const px = X(r.t); const py = Y(val);
        if (pen) ctx.lineTo(px, py); else ctx.moveTo(px, py);
        pen = true;
        prevT = r.t;
      }
      ctx.stroke();
    }
    ctx.setLineDash([]);
    ctx.globalAlpha = 1;

    // hover
    tip.hidden = true;
    if (hoverX !== null && rows.length) {
      const ts = t0 + ((hoverX - L) / pw) * WINDOW_S;
      let best = null;
      for (const r of rows) if (!best || Math.abs(r.t - ts) < Math.abs(best.t - ts)) best = r;
      if (best && Math.abs(best.t - ts) < 60) {
        const px = X(best.t);
        ctx.strokeStyle = v('--muted');
        ctx.beginPath(); ctx.moveTo(px, T); ctx.lineTo(px, T + ph); ctx.stroke();
        for (const s of keys) {
          if (s.dashed || !isNum(best[s.key])) continue;
          ctx.fillStyle = v(s.color);
          ctx.beginPath(); ctx.arc(px, Y(best[s.key]), 3.5, 0, Math.PI * 2); ctx.fill();
        }
        const lines = [fmtClock(best.t)];
        const pair = (label, cur, tgt) => {
          if (!isNum(cur)) return;
          lines.push(`${label}: ${fmtTemp(cur, 1)}${isNum(tgt) && tgt > 0 ? ` → ${fmtTemp(tgt)}` : ''}`);
        };
        pair(t('temp.nozzle'), best.nozzle, best.nozzle_target);
        pair(t('temp.bed'), best.bed, best.bed_target);
        if (withChamber) pair(t('temp.chamber'), best.chamber, null);
        tip.replaceChildren(...lines.map((l, i) => h(i ? 'div' : 'strong', {}, l)));
        tip.hidden = false;
        const left = px + 12 + tip.offsetWidth > w ? px - 12 - tip.offsetWidth : px + 12;
        tip.style.left = `${Math.max(0, left)}px`;
        tip.style.top = `${T}px`;
      }
    }
  }

  const move = (e) => { const r = canvas.getBoundingClientRect(); hoverX = e.clientX - r.left; schedule(); };
  const leave = () => { hoverX = null; schedule(); };
  canvas.addEventListener('pointermove', move);
  canvas.addEventListener('pointerdown', move);
  canvas.addEventListener('pointerleave', leave);
  const ro = new ResizeObserver(schedule);
  ro.observe(wrap);
  const offTheme = onThemeChange(() => schedule());
  const clock = setInterval(schedule, 30000); // the window slides even without new points

  return {
    el, setData, push, setChamber,
    destroy() { ro.disconnect(); offTheme(); clearInterval(clock); cancelAnimationFrame(raf); },
  };
}
