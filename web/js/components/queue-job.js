// One job of the print queue: what it prints (picture, file, plate), how many copies are done,
// its state in words, why it is not running yet (the API's reasons, per printer), every copy sent
// (printer, state, upload or print progress, error), and the actions that fit: move up/down,
// retry, cancel or remove.
import { h, scope, setAttr, setText, show } from '../dom.js';
import { fmtBytes, fmtClock, fmtDuration, fmtPercent, isNum } from '../format.js';
import { t, tMaybe } from '../i18n.js';
import { icon } from '../icons.js';
import { printerName, store } from '../store.js';
import { plateThumb } from './queue-add.js';
import { thumb } from './thumb.js';

export const FINISHED = new Set(['done', 'failed', 'cancelled']);
/** Run states of a copy on its way to a printer or printing there. */
export const IN_FLIGHT = new Set(['uploading', 'starting', 'printing']);
const TONE = { waiting: 'idle', dispatching: 'busy', printing: 'busy', done: 'good', failed: 'bad', cancelled: 'warn' };
const RUN_TONE = { uploading: 'busy', starting: 'busy', printing: 'busy', done: 'good', failed: 'bad', cancelled: 'warn' };

function priorityWord(n) {
  if (!isNum(n) || n === 0) return null;
  if (n >= 50) return t('priority.urgent');
  if (n > 0) return t('priority.high');
  return t('priority.low');
}

/** A copy sent to a printer: its state and live progress (upload from transfer frames, print
 *  from the printer's state). */
function runItem(run, sc, uploads, shownError) {
  const state = typeof run.state === 'string' ? run.state : 'unknown';
  const label = tMaybe(`run.${state}`) ?? state;
  const fill = h('span', { class: 'progress-fill' });
  const bar = h('span', { class: 'progress-track', role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-label': t('queue.run_progress', { name: printerName(run.printer_id) }) }, fill);
  const detail = h('span', { class: 'run-detail', testid: 'run-detail' });
  const progress = h('span', { class: 'run-progress', hidden: true }, bar, detail);
  const li = h('li', { class: 'run', testid: 'job-run', dataset: { state, printer: run.printer_id } },
    h('span', { class: 'run-head' },
      h('a', { class: 'run-printer', href: `#/printer/${encodeURIComponent(run.printer_id)}` }, printerName(run.printer_id)),
      h('span', { class: `badge tone-${RUN_TONE[state] || 'idle'}`, testid: 'run-state' }, label)),
    progress,
    typeof run.error === 'string' && run.error && run.error !== shownError ? h('span', { class: 'run-error', testid: 'run-error' }, run.error) : null);
  const setBar = (pct, text) => {
    show(progress, true);
    fill.style.width = `${Math.max(0, Math.min(100, pct))}%`;
    setAttr(bar, 'aria-valuenow', String(Math.round(pct)));
    setText(detail, text);
  };
  if (state === 'uploading') {
    const paint = (tr) => {
      if (!tr || !isNum(tr.done)) return;
      const pct = isNum(tr.total) && tr.total > 0 ? (tr.done / tr.total) * 100 : 0;
      setBar(pct, t('queue.sending', { pct: fmtPercent(pct), done: fmtBytes(tr.done), total: fmtBytes(tr.total) }));
    };
    paint(uploads.get(run.printer_id));
    sc.add(uploads.watch(run.printer_id, paint));
  } else if (state === 'printing') {
    sc.add(store.watch(run.printer_id, ['print.progress', 'print.remaining_s', 'link.state'], (p) => {
      const pr = p.print || {};
      if (p.link?.state !== 'connected' || !isNum(pr.progress)) { show(progress, false); return; }
      const left = isNum(pr.remaining_s) && pr.remaining_s > 0 ? t('queue.left', { d: fmtDuration(pr.remaining_s), at: fmtClock(Date.now() / 1000 + pr.remaining_s) }) : '';
      setBar(pr.progress, [fmtPercent(pr.progress), left].filter(Boolean).join(' · '));
    }));
  }
  return li;
}

/**
 * createJobRow(job, ctx) -> {el, update(job), destroy()}
 * ctx: {uploads, onMove(job, -1|1), onRetry(job), onRemove(job), canMove(job, dir)}
 */
export function createJobRow(job, ctx) {
  const el = h('li', { class: 'job', testid: 'queue-job' });
  let sc = scope();
  let thumbKey = null;
  const thumbSlot = h('div', { class: 'job-thumb' });

  function render(j) {
    // Keep keyboard focus where it was when the row is drawn again (e.g. after "move up").
    const focused = el.contains(document.activeElement) ? document.activeElement.dataset.testid : null;
    sc.dispose();
    sc = scope();
    const state = typeof j.state === 'string' ? j.state : 'waiting';
    el.dataset.id = String(j.id);
    el.dataset.state = state;
    el.draggable = !FINISHED.has(state);
    const name = typeof j.file?.name === 'string' ? j.file.name : t('queue.file_gone');
    const key = `${j.file?.id}:${j.plate}`;
    if (key !== thumbKey) {
      thumbKey = key;
      thumbSlot.replaceChildren(thumb(/\.3mf$/i.test(name) && isNum(j.file?.id) ? plateThumb(j.file.id, j.plate) : null, { alt: '', cls: 'thumb-md' }));
    }
    const copies = isNum(j.copies) ? j.copies : 1;
    const done = isNum(j.copies_done) ? j.copies_done : 0;
    const chips = [
      h('span', { class: 'chip', testid: 'job-plate' }, t('queue.plate', { n: j.plate })),
      h('span', { class: 'chip', testid: 'job-copies' }, copies > 1 ? (done ? t('queue.copies_done', { done, copies }) : t('queue.copies_n', { copies })) : t('queue.one_copy')),
      priorityWord(j.priority) ? h('span', { class: `chip chip-prio${j.priority > 0 ? ' is-high' : ''}`, testid: 'job-priority' }, priorityWord(j.priority)) : null,
      h('span', { class: 'chip', testid: 'job-target' }, !j.target || j.target === 'any' ? t('queue.on_any') : t('queue.on_printer', { name: printerName(j.target) })),
    ];
    const stateBadge = h('span', { class: `badge tone-${TONE[state] || 'idle'}`, testid: 'job-state', dataset: { state } }, tMaybe(`job.${state}`) ?? state);

    const reasons = Array.isArray(j.reasons) ? j.reasons.filter((r) => typeof r === 'string' && r) : [];
    const why = reasons.length && !FINISHED.has(state)
      ? h('div', { class: 'why', testid: 'job-reasons' },
        h('p', { class: 'why-title' }, t('queue.why')),
        h('ul', {}, reasons.map((r) => h('li', { testid: 'job-reason' }, r))))
      : null;
    const err = (state === 'failed' || (state === 'waiting' && j.attempts > 0)) && typeof j.last_error === 'string' && j.last_error
      ? h('p', { class: state === 'failed' ? 'job-error' : 'job-note', testid: 'job-error' }, icon('alert'), j.last_error)
      : null;
    const runs = Array.isArray(j.runs) ? j.runs.filter((r) => r && typeof r.printer_id === 'string') : [];
    // Finished copies of a long job add up: show the ones in flight and the last few.
    const shown = runs.filter((r) => IN_FLIGHT.has(r.state)).concat(runs.filter((r) => !IN_FLIGHT.has(r.state)).slice(-3));
    const runList = shown.length ? h('ul', { class: 'runs', testid: 'job-runs', 'aria-label': t('queue.runs') }, shown.map((r) => runItem(r, sc, ctx.uploads, err ? j.last_error : null))) : null;

    const actions = h('div', { class: 'job-actions' });
    if (!FINISHED.has(state)) {
      const up = h('button', { type: 'button', class: 'icon-btn', testid: 'job-up', 'aria-label': t('queue.move_up_named', { name }), title: t('queue.move_up'), disabled: !ctx.canMove(j, -1) }, icon('up'));
      const down = h('button', { type: 'button', class: 'icon-btn', testid: 'job-down', 'aria-label': t('queue.move_down_named', { name }), title: t('queue.move_down'), disabled: !ctx.canMove(j, 1) }, icon('down'));
      up.addEventListener('click', () => ctx.onMove(j, -1));
      down.addEventListener('click', () => ctx.onMove(j, 1));
      const inFlight = runs.some((r) => IN_FLIGHT.has(r.state));
      const cancel = h('button', { type: 'button', class: 'btn btn-small btn-danger', testid: 'job-cancel', 'aria-label': t(inFlight ? 'queue.cancel_named' : 'queue.remove_named', { name }) }, icon('x'), inFlight ? t('queue.cancel') : t('common.remove'));
      cancel.addEventListener('click', () => ctx.onRemove(j));
      actions.append(h('span', { class: 'move', role: 'group', 'aria-label': t('queue.order') }, up, down), cancel);
    } else {
      if (state === 'failed' || state === 'cancelled') {
        const retry = h('button', { type: 'button', class: 'btn btn-small', testid: 'job-retry', 'aria-label': t('queue.retry_named', { name }) }, icon('refresh'), t('queue.retry'));
        retry.addEventListener('click', () => ctx.onRetry(j));
        actions.appendChild(retry);
      }
      const remove = h('button', { type: 'button', class: 'btn btn-small btn-ghost', testid: 'job-remove', 'aria-label': t('queue.remove_named', { name }) }, icon('trash'), t('common.remove'));
      remove.addEventListener('click', () => ctx.onRemove(j));
      actions.appendChild(remove);
    }
    const retryAt = state === 'waiting' && isNum(j.next_attempt_at) && j.next_attempt_at * 1000 > Date.now()
      ? h('p', { class: 'job-note' }, t('queue.retry_at', { time: fmtClock(j.next_attempt_at) })) : null;

    el.replaceChildren(
      thumbSlot,
      h('div', { class: 'job-main' },
        h('div', { class: 'job-title-line' }, h('strong', { class: 'job-name', testid: 'job-name', title: name }, name), stateBadge),
        h('div', { class: 'job-chips' }, chips),
        err, retryAt, why, runList),
      actions);
    if (focused) {
      const again = el.querySelector(`[data-testid="${focused}"]`);
      if (again && !again.disabled) again.focus();
      else el.querySelector('.job-actions button:not(:disabled)')?.focus();
    }
  }

  render(job);
  return {
    el,
    update(j) { job = j; render(j); },
    refresh() { render(job); },
    get job() { return job; },
    destroy() { sc.dispose(); },
  };
}
