// The print queue: add a print (upload, pick a plate, copies, priority, target), the jobs in the
// order they will run with why each is waiting, what every printer needs before it takes one
// (the bed), reorder (buttons, keyboard, or drag), pause/resume. Live through `queue` frames (jobs,
// readiness, pause, files) and `transfer` frames (a copy being sent to a printer).
import { ApiError, del, enc, get, post } from '../api.js';
import { on } from '../bus.js';
import { createQueueAdd } from '../components/queue-add.js';
import { createJobRow, FINISHED, IN_FLIGHT } from '../components/queue-job.js';
import { createQueuePrinters } from '../components/queue-printers.js';
import { confirmDialog } from '../dialog.js';
import { h, scope, setText, show } from '../dom.js';
import { t } from '../i18n.js';
import { icon } from '../icons.js';
import { printerName } from '../store.js';
import { errorText, toast } from '../toast.js';
import { onWsBack } from '../ws.js';

/** Queue order: priority first (higher runs first), then the manual position. */
export function queueOrder(a, b) {
  return (b.priority || 0) - (a.priority || 0) || (a.position || 0) - (b.position || 0) || a.id - b.id;
}

/** Latest transfer per printer (the dispatcher sends one file at a time to a printer). */
function uploadTracker(sc) {
  const last = new Map();
  const watchers = new Map();
  sc.add(on('ws:transfer', (msg) => {
    if (!msg || typeof msg.id !== 'string' || msg.direction !== 'upload') return;
    last.set(msg.id, msg);
    for (const fn of watchers.get(msg.id) || []) fn(msg);
  }));
  return {
    get: (id) => last.get(id) || null,
    watch(id, fn) {
      if (!watchers.has(id)) watchers.set(id, new Set());
      watchers.get(id).add(fn);
      return () => watchers.get(id)?.delete(fn);
    },
  };
}

export function mount(root) {
  const sc = scope();
  const jobs = new Map(); // id -> job
  const rows = new Map(); // id -> row
  let paused = false;
  let token = 0;
  const uploads = uploadTracker(sc);

  // --- head: queue state and pause/resume ----------------------------------------------------------
  const stateBadge = h('span', { class: 'badge', testid: 'queue-state' });
  const stateNote = h('p', { class: 'page-sub', testid: 'queue-summary' });
  const pauseBtn = h('button', { type: 'button', class: 'btn', testid: 'queue-pause' });
  const head = h('div', { class: 'page-head' },
    h('div', {}, h('div', { class: 'title-line' }, h('h1', {}, t('queue.title')), stateBadge), stateNote),
    pauseBtn);

  function paintHead() {
    stateBadge.className = `badge ${paused ? 'tone-warn' : 'tone-good'}`;
    stateBadge.dataset.paused = paused ? 'true' : 'false';
    setText(stateBadge, paused ? t('queue.paused') : t('queue.running'));
    pauseBtn.replaceChildren(icon(paused ? 'play' : 'pause'), paused ? t('queue.resume') : t('queue.pause'));
    pauseBtn.className = paused ? 'btn btn-primary' : 'btn';
    const active = [...jobs.values()].filter((j) => !FINISHED.has(j.state));
    const printing = active.filter((j) => j.state === 'printing' || j.state === 'dispatching').length;
    setText(stateNote, paused ? t('queue.paused_note') : active.length ? (printing ? t('queue.summary', { count: active.length, printing }) : t('queue.summary_waiting', { count: active.length })) : t('queue.empty_note'));
  }
  pauseBtn.addEventListener('click', async () => {
    pauseBtn.disabled = true;
    try {
      const res = await post(paused ? '/api/queue/resume' : '/api/queue/pause', {});
      paused = Boolean(res?.paused);
      paintHead();
    } catch (e) {
      toast(errorText(e), { kind: 'error' });
    } finally {
      pauseBtn.disabled = false;
    }
  });

  // --- lists -------------------------------------------------------------------------------------------
  const activeList = h('ol', { class: 'jobs', testid: 'queue-jobs', 'aria-labelledby': 'queue-jobs-title' });
  const activeEmpty = h('p', { class: 'empty-line', testid: 'queue-empty' }, t('queue.no_jobs'));
  const finishedList = h('ul', { class: 'jobs jobs-finished', testid: 'queue-finished' });
  const finishedPanel = h('section', { class: 'panel', testid: 'queue-finished-panel', 'aria-labelledby': 'queue-finished-title', hidden: true },
    h('div', { class: 'panel-head' }, h('h2', { id: 'queue-finished-title' }, t('queue.finished'))), finishedList);
  const jobsPanel = h('section', { class: 'panel', testid: 'queue-jobs-panel', 'aria-labelledby': 'queue-jobs-title' },
    h('div', { class: 'panel-head' }, h('h2', { id: 'queue-jobs-title', tabindex: '-1' }, t('queue.jobs')), h('span', { class: 'page-sub' }, t('queue.order_hint'))),
    activeList, activeEmpty);
  const status = h('div', { testid: 'queue-status', 'aria-live': 'polite' });
  const printers = createQueuePrinters();
  sc.add(printers.destroy);
  const add = createQueueAdd({ onQueued: (job) => upsert(job) });
  sc.add(add.destroy);

  const page = h('div', { class: 'page queue-page', testid: 'queue-page' },
    head, status,
    h('div', { class: 'queue-layout' },
      h('div', { class: 'col' }, jobsPanel, finishedPanel),
      h('div', { class: 'col' }, add.el, printers.el)));
  root.appendChild(page);
  document.title = `${t('queue.title')} · bambu-edge`;

  const activeJobs = () => [...jobs.values()].filter((j) => !FINISHED.has(j.state)).sort(queueOrder);
  const finishedJobs = () => [...jobs.values()].filter((j) => FINISHED.has(j.state)).sort((a, b) => (b.ended_at || 0) - (a.ended_at || 0) || b.id - a.id);

  const samePriority = (a, b) => Boolean(a && b) && (a.priority || 0) === (b.priority || 0);

  /** The neighbour a job swaps with: the next one up or down with the same priority (priority
   *  decides first, so moving past a job of another priority would change nothing). */
  function neighbour(job, dir) {
    const list = activeJobs();
    const other = list[list.findIndex((j) => j.id === job.id) + dir];
    return samePriority(other, job) ? other : null;
  }

  /** The unfinished jobs but `job` in their manual order (what the move API's `before` counts in). */
  const byPosition = (job) => [...jobs.values()].filter((j) => !FINISHED.has(j.state) && j.id !== job.id).sort((a, b) => (a.position || 0) - (b.position || 0) || a.id - b.id);

  /** `before` for putting `job` just after `other`: the job that follows `other`, or null (the end). */
  function beforeAfter(job, other) {
    const byPos = byPosition(job);
    return byPos[byPos.findIndex((j) => j.id === other.id) + 1]?.id ?? null;
  }

  const ctx = {
    uploads,
    canMove: (job, dir) => Boolean(neighbour(job, dir)),
    onMove: (job, dir) => move(job, dir),
    onRetry: async (job) => {
      try {
        upsert(await post(`/api/queue/${enc(job.id)}/retry`, {}));
      } catch (e) {
        toast(errorText(e), { kind: 'error' });
      }
    },
    onRemove: (job) => remove(job),
  };

  /** `before` for the move API: the manual order (position) of unfinished jobs. */
  function beforeFor(job, dir) {
    const other = neighbour(job, dir);
    if (!other) return undefined;
    return dir < 0 ? other.id : beforeAfter(job, other);
  }

  async function move(job, dir, before = beforeFor(job, dir)) {
    if (before === undefined) return;
    try {
      const moved = await post(`/api/queue/${enc(job.id)}/move`, { before });
      // The server renumbers the manual order 1..n; do the same here so the list does not jump
      // about until the other jobs' frames arrive.
      const byPos = byPosition(job);
      const at = before === null ? byPos.length : byPos.findIndex((j) => j.id === before);
      byPos.splice(at < 0 ? byPos.length : at, 0, jobs.get(job.id));
      byPos.forEach((j, i) => { if (j) jobs.set(j.id, { ...j, position: i + 1 }); });
      upsert(moved); // the other jobs' new positions arrive as `queue` frames
    } catch (e) {
      toast(errorText(e), { kind: 'error' });
    }
  }

  async function remove(job) {
    const name = job.file?.name || '';
    const inFlight = (job.runs || []).some((r) => IN_FLIGHT.has(r.state));
    const finished = FINISHED.has(job.state);
    const printingOn = (job.runs || []).filter((r) => r.state === 'printing' || r.state === 'starting').map((r) => printerName(r.printer_id));
    const ok = await confirmDialog({
      title: inFlight ? t('queue.cancel_title', { name }) : t('queue.remove_title', { name }),
      body: inFlight
        ? (printingOn.length ? t('queue.cancel_body_printing', { printers: printingOn.join(', ') }) : t('queue.cancel_body'))
        : finished ? t('queue.remove_finished_body') : t('queue.remove_body'),
      ok: inFlight ? t('queue.cancel') : t('common.remove'),
      cancel: t('queue.keep'),
      danger: true,
    });
    if (!ok) return;
    // Where the keyboard goes once the row is gone: the next job, else the one before, else the list.
    const list = FINISHED.has(job.state) ? finishedJobs() : activeJobs();
    const i = list.findIndex((j) => j.id === job.id);
    const next = list[i + 1] || list[i - 1];
    try {
      const res = await del(`/api/queue/${enc(job.id)}`);
      if (res && res.id !== undefined) upsert(res); else drop(job.id);
      if (!document.activeElement || document.activeElement === document.body) {
        const row = next && rows.get(next.id);
        (row?.el.querySelector('.job-actions button:not(:disabled)') || jobsPanel.querySelector('h2'))?.focus();
      }
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) drop(job.id);
      else toast(errorText(e), { kind: 'error' });
    }
  }

  /** One job in or out; place() puts the rows in order (once for a whole list, see load()). */
  function put(job) {
    jobs.set(job.id, job);
    const row = rows.get(job.id);
    if (row) row.update(job); else rows.set(job.id, createJobRow(job, ctx));
  }

  function unput(id) {
    jobs.delete(id);
    const row = rows.get(id);
    if (row) { row.destroy(); row.el.remove(); rows.delete(id); }
  }

  function upsert(job) {
    if (!job || typeof job.id !== 'number') return;
    put(job);
    place();
  }

  function drop(id) {
    unput(id);
    place();
  }

  /** Put rows in order, moving only what moved (a focused button stays focused). */
  function place() {
    const focused = document.activeElement;
    const active = activeJobs();
    const finished = finishedJobs();
    const order = (list, parent) => {
      list.forEach((j, i) => {
        const el = rows.get(j.id).el;
        if (parent.children[i] !== el) parent.insertBefore(el, parent.children[i] || null);
      });
    };
    order(active, activeList);
    order(finished, finishedList);
    // Move buttons depend on the neighbours: refresh them where they changed.
    active.forEach((j, i) => {
      const row = rows.get(j.id);
      const up = row.el.querySelector('[data-testid=job-up]');
      const down = row.el.querySelector('[data-testid=job-down]');
      if (up) up.disabled = !samePriority(active[i - 1], j);
      if (down) down.disabled = !samePriority(active[i + 1], j);
    });
    // Moving a row takes it out of the page for a moment, which drops the keyboard focus: give it
    // back, and to a neighbouring button when the focused one just got disabled (top or bottom).
    if (focused && focused !== document.activeElement && focused.isConnected) {
      const row = focused.closest('li.job');
      const target = !focused.disabled ? focused : row?.querySelector('.job-actions button:not(:disabled)');
      target?.focus({ preventScroll: false });
    } else if (focused?.disabled && focused.isConnected) {
      focused.closest('li.job')?.querySelector('.job-actions button:not(:disabled)')?.focus();
    }
    show(activeEmpty, active.length === 0);
    show(activeList, active.length > 0);
    show(finishedPanel, finished.length > 0);
    paintHead();
  }

  // Drag and drop (the move buttons do the same with the keyboard).
  let dragged = null;
  sc.listen(activeList, 'dragstart', (e) => {
    const li = e.target.closest?.('li.job');
    if (!li) return;
    dragged = Number(li.dataset.id);
    li.classList.add('is-dragging');
    e.dataTransfer.effectAllowed = 'move';
    e.dataTransfer.setData('text/plain', li.dataset.id);
  });
  sc.listen(activeList, 'dragend', () => {
    for (const li of activeList.querySelectorAll('.is-dragging, .drop-before, .drop-after')) li.classList.remove('is-dragging', 'drop-before', 'drop-after');
    dragged = null;
  });
  sc.listen(activeList, 'dragover', (e) => {
    const li = e.target.closest?.('li.job');
    if (dragged === null || !li || Number(li.dataset.id) === dragged) return;
    e.preventDefault();
    const r = li.getBoundingClientRect();
    const after = e.clientY > r.top + r.height / 2;
    for (const x of activeList.querySelectorAll('.drop-before, .drop-after')) x.classList.remove('drop-before', 'drop-after');
    li.classList.add(after ? 'drop-after' : 'drop-before');
  });
  sc.listen(activeList, 'drop', (e) => {
    const li = e.target.closest?.('li.job');
    if (dragged === null || !li) return;
    e.preventDefault();
    const job = jobs.get(dragged);
    const target = jobs.get(Number(li.dataset.id));
    if (!job || !target || target.id === job.id) return;
    move(job, 0, li.classList.contains('drop-after') ? beforeAfter(job, target) : target.id);
  });

  // --- loading and live updates ---------------------------------------------------------------------
  async function load() {
    const my = ++token;
    try {
      const q = await get('/api/queue');
      if (my !== token) return;
      status.replaceChildren();
      paused = Boolean(q?.paused);
      const list = Array.isArray(q?.jobs) ? q.jobs.filter((j) => j && typeof j.id === 'number') : [];
      const seen = new Set(list.map((j) => j.id));
      for (const id of [...jobs.keys()]) if (!seen.has(id)) unput(id);
      for (const j of list) put(j);
      printers.set(q?.printers);
      place();
    } catch (e) {
      if (my !== token || (e instanceof ApiError && e.status === 401)) return;
      status.replaceChildren(h('div', { class: 'notice notice-bad', role: 'alert', testid: 'queue-error' },
        h('p', { class: 'notice-title' }, icon('alert'), t('queue.load_failed')),
        h('p', {}, errorText(e)),
        h('button', { type: 'button', class: 'btn btn-small', onclick: () => load() }, icon('refresh'), t('common.retry'))));
    }
  }

  sc.add(on('ws:queue', (msg) => {
    if (!msg) return;
    if (msg.job) upsert(msg.job);
    if (typeof msg.removed === 'number') drop(msg.removed);
    if (typeof msg.paused === 'boolean') { paused = msg.paused; paintHead(); }
    if (msg.printer) printers.update(msg.printer);
    if (msg.file) add.fileChanged(msg.file);
    if (typeof msg.file_removed === 'number') add.fileRemoved(msg.file_removed);
  }));
  sc.add(onWsBack(() => { load(); add.reload(); }));
  // "Retry in 20 s" and finish clocks: redraw waiting rows now and then.
  sc.interval(() => { for (const row of rows.values()) if (row.job.state === 'waiting' && row.job.next_attempt_at) row.refresh(); }, 15000);

  paintHead();
  load();
  return () => {
    token += 1;
    for (const row of rows.values()) row.destroy();
    sc.dispose();
    document.title = 'bambu-edge';
  };
}
