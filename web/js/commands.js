// Printer commands: POST .../commands (202 + sequence_id), outcome later as a WS `command` event,
// shown as a toast. Listeners (the G-code console) can follow one sequence_id.
import { post, enc } from './api.js';
import { on } from './bus.js';
import { t, tMaybe } from './i18n.js';
import { printerName } from './store.js';
import { toast, errorText } from './toast.js';

const followers = new Map(); // sequence_id -> fn(event)
const early = new Map(); // sequence_id -> event that arrived before the POST answered
const mine = new Set();

export function actionLabel(action) {
  return tMaybe(`action.${action}`) ?? String(action || '');
}

function showOutcome(ev) {
  const name = printerName(ev.id);
  const what = actionLabel(ev.action);
  const msg = typeof ev.message === 'string' && ev.message ? ev.message : null;
  if (ev.result === 'success') {
    toast(t('cmd.success', { action: what }), { kind: 'success', title: name });
  } else if (ev.result === 'timeout') {
    toast(msg || t('cmd.timeout', { action: what }), { kind: 'warn', title: name });
  } else {
    toast(msg ? t('cmd.failed_msg', { action: what, message: msg }) : t('cmd.failed', { action: what }),
      { kind: 'error', title: name });
  }
}

on('command', (ev) => {
  if (!ev || typeof ev !== 'object') return;
  const seq = ev.sequence_id === undefined || ev.sequence_id === null ? null : String(ev.sequence_id);
  // The console shows gcode acks itself; everything else (also from other browsers) as a toast.
  const fn = seq && followers.get(seq);
  if (fn) {
    followers.delete(seq);
    fn(ev);
  } else if (seq && !mine.has(seq)) {
    early.set(seq, ev);
    setTimeout(() => early.delete(seq), 30000);
  }
  if (!(fn && ev.action === 'gcode')) showOutcome(ev);
  if (seq) mine.delete(seq);
});

/**
 * sendCommand('x1c-left', 'pause') / ('speed', {level: 3}) / ('light', {on: true}) / ('gcode', {line}).
 * follow(ev) is called with the outcome event. Errors (409 offline, 400, 403 ...) become a toast and
 * are rethrown.
 */
export async function sendCommand(printerId, action, params = {}, follow = null) {
  let res;
  try {
    res = await post(`/api/printers/${enc(printerId)}/commands`, { action, ...params });
  } catch (e) {
    toast(errorText(e, 'cmd.send_failed'), { kind: 'error', title: printerName(printerId) });
    throw e;
  }
  const seq = res && res.sequence_id !== undefined && res.sequence_id !== null ? String(res.sequence_id) : null;
  if (seq) {
    mine.add(seq);
    if (follow) {
      const ev = early.get(seq);
      if (ev) { early.delete(seq); follow(ev); } else followers.set(seq, follow);
    }
  }
  return seq;
}
