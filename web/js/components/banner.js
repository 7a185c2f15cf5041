// "Connection lost" banner: shown while the live WebSocket is down, with a countdown to the next
// attempt and a "retry now" button. The page is marked stale (CSS dims live values) meanwhile.
import { on } from '../bus.js';
import { h, setText } from '../dom.js';
import { t } from '../i18n.js';
import { icon } from '../icons.js';
import { reconnectNow } from '../ws.js';

export function mountBanner(slot) {
  const text = h('span', { class: 'banner-text', testid: 'connection-banner-text' });
  const retry = h('button', { type: 'button', class: 'btn btn-small', testid: 'connection-retry', onclick: () => reconnectNow() });
  const el = h('div', { class: 'banner banner-warn', id: 'connection-banner', testid: 'connection-banner', role: 'status', hidden: true },
    icon('offline'), text, retry);
  slot.appendChild(el);
  let retryAt = null;
  let tick = null;
  let state = 'idle';

  function paint() {
    setText(retry, t('banner.retry'));
    if (state === 'connecting') {
      setText(text, t('banner.reconnecting'));
    } else {
      const secs = retryAt ? Math.max(0, Math.ceil((retryAt - Date.now()) / 1000)) : 0;
      setText(text, secs > 0 ? t('banner.lost_retry', { s: secs }) : t('banner.lost'));
    }
  }

  on('ws:state', (ev) => {
    const prev = state;
    state = ev.state;
    if (state === 'lost') {
      retryAt = ev.retryAt || null;
    }
    // "connecting" after a loss keeps the banner; the very first connect shows nothing.
    const visible = state === 'lost' || (state === 'connecting' && (prev === 'lost' || !el.hidden));
    el.hidden = !visible;
    document.documentElement.classList.toggle('is-stale', visible);
    clearInterval(tick);
    tick = null;
    if (visible) {
      paint();
      if (state === 'lost') tick = setInterval(paint, 1000);
    }
  });
}
