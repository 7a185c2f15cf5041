// The status LED's pattern in the header: a dot in the pattern's colour blinking with its steps
// (the same [lit, seconds] the LED follows), its name as the title. GET /api/panel once signed in
// and after a lost connection; `panel` WebSocket events when it changes.
import { get } from '../api.js';
import { on } from '../bus.js';
import { h } from '../dom.js';
import { t } from '../i18n.js';
import { onWsBack } from '../ws.js';
import { running } from './running.js';

const DIM = 0.15;

export function panelDot() {
  const dot = h('span', { class: 'led-dot', 'aria-hidden': 'true' });
  const el = h('span', { class: 'led', testid: 'panel-led', role: 'img', hidden: true }, dot);
  let anim = null;
  let current = null;

  function paint(p) {
    if (!p || typeof p.pattern !== 'string') return;
    current = p;
    const label = t('panel.led', { state: t(`panel.state.${p.pattern}`) });
    el.title = label;
    el.setAttribute('aria-label', label);
    el.dataset.pattern = p.pattern;
    el.hidden = false;
    if (/^#[0-9a-f]{6}$/i.test(p.color || '')) dot.style.setProperty('--led', p.color);
    anim?.cancel();
    anim = null;
    const steps = Array.isArray(p.steps) ? p.steps.filter((s) => Array.isArray(s) && s[1] > 0) : [];
    const total = steps.reduce((sum, s) => sum + s[1], 0);
    if (!total || !dot.animate || matchMedia('(prefers-reduced-motion: reduce)').matches) return;
    let at = 0;
    const frames = steps.map(([lit, secs]) => {
      const f = { offset: at / total, opacity: lit ? 1 : DIM, easing: 'steps(1, end)' };
      at += secs;
      return f;
    });
    frames.push({ offset: 1, opacity: steps[0][0] ? 1 : DIM });
    anim = dot.animate(frames, { duration: total * 1000, iterations: Infinity });
  }

  async function load() {
    try {
      if (!(await running('panel'))) throw new Error('no panel');
      paint(await get('/api/panel'));
    } catch {
      el.hidden = true; // no panel component: nothing to show
    }
  }

  on('ws:panel', paint);
  onWsBack(load);
  return { el, load, repaint: () => paint(current) };
}
