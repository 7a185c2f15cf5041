// Toasts: short messages in a polite live region (errors are assertive). Click × or wait.
import { h } from './dom.js';
import { icon } from './icons.js';
import { t } from './i18n.js';

let region = null;
const MAX = 5;

function ensure() {
  if (region && region.isConnected) return region;
  region = h('div', { class: 'toasts', id: 'toasts', testid: 'toasts', role: 'region', 'aria-label': t('toast.region') });
  document.body.appendChild(region);
  return region;
}

/** toast(text, {kind: 'info'|'success'|'error'|'warn', title, timeout}) */
export function toast(text, { kind = 'info', title = null, timeout } = {}) {
  const box = ensure();
  const ms = timeout ?? (kind === 'error' ? 10000 : kind === 'success' ? 4000 : 6000);
  const el = h('div', {
    class: `toast toast-${kind}`,
    role: kind === 'error' ? 'alert' : 'status',
    testid: 'toast',
    dataset: { kind },
  },
  icon(kind === 'success' ? 'check' : kind === 'error' || kind === 'warn' ? 'alert' : 'info', 'icon toast-icon'),
  h('div', { class: 'toast-body' },
    title ? h('strong', { class: 'toast-title' }, title) : null,
    h('span', { class: 'toast-text' }, text)),
  );
  const close = h('button', { class: 'icon-btn toast-close', type: 'button', 'aria-label': t('common.dismiss'), testid: 'toast-close' }, icon('x'));
  el.appendChild(close);
  let timer = null;
  const remove = () => { clearTimeout(timer); el.remove(); };
  close.addEventListener('click', remove);
  // Pause while hovered or focused so a long message can be read.
  const arm = () => { clearTimeout(timer); if (ms > 0) timer = setTimeout(remove, ms); };
  el.addEventListener('mouseenter', () => clearTimeout(timer));
  el.addEventListener('mouseleave', arm);
  el.addEventListener('focusin', () => clearTimeout(timer));
  el.addEventListener('focusout', arm);
  box.appendChild(el);
  while (box.children.length > MAX) box.firstElementChild.remove();
  arm();
  return remove;
}

export function toastError(err, fallbackKey = 'error.generic') {
  toast(errorText(err, fallbackKey), { kind: 'error' });
}

/** Plain words for an ApiError (or anything thrown). */
export function errorText(err, fallbackKey = 'error.generic') {
  if (!err) return t(fallbackKey);
  if (err.code === 'network') return t('error.network');
  if (err.code === 'timeout') return t('error.timeout');
  if (err.code === 'rate_limited' || err.status === 429) {
    return err.retryAfter ? t('error.rate_limited_wait', { s: err.retryAfter }) : t('error.rate_limited');
  }
  if (err.code === 'csrf') return t('error.csrf');
  if (err.status === 409 && err.code === 'offline') return t('error.offline');
  if (err.status === 403) return err.message || t('error.forbidden');
  return err.message || t(fallbackKey);
}

export function clearToasts() {
  if (region) region.replaceChildren();
}
