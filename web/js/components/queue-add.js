// "Add a print" on the queue page: upload a sliced .3mf (or .gcode) with progress, or take one
// uploaded before; then pick a plate from the file's own metadata (picture, predicted time,
// filaments, printer model), set copies, priority and where it may run, and queue it.
import { ApiError, del, enc, get, post } from '../api.js';
import { confirmDialog } from '../dialog.js';
import { field, h, nextId, setAttr, setText, show } from '../dom.js';
import { fmtBytes, fmtDuration, fmtGrams, fmtNumber, fmtPercent, isNum } from '../format.js';
import { t } from '../i18n.js';
import { icon } from '../icons.js';
import { printerName, store } from '../store.js';
import { errorText, toast } from '../toast.js';
import { upload } from '../upload.js';
import { filamentList } from './filament.js';
import { printOptions } from './print-options.js';
import { thumb } from './thumb.js';

const ACCEPT = /\.(3mf|gcode)$/i;
export const PRIORITIES = [[50, 'urgent'], [10, 'high'], [0, 'normal'], [-10, 'low']];

export function plateThumb(fileId, plate) {
  return `/api/queue/files/${enc(fileId)}/thumbnail?plate=${enc(plate)}`;
}

function uploadErrorText(e) {
  if (e instanceof ApiError && e.status === 413) return e.message || t('queue.too_large');
  if (e instanceof ApiError && e.status >= 400 && e.status < 500 && e.message && e.code !== 'csrf') return e.message;
  return errorText(e);
}

/** createQueueAdd({onQueued(job)}) -> {el, setFiles(list), fileChanged(file), fileRemoved(id), destroy} */
export function createQueueAdd({ onQueued }) {
  let files = [];
  let current = null; // the file being set up
  let uploading = null;

  // --- step 1: a file --------------------------------------------------------------------------------
  const input = h('input', { type: 'file', accept: '.3mf,.gcode', class: 'sr-only', tabindex: '-1', 'aria-hidden': 'true', testid: 'queue-file-input' });
  const choose = h('button', { type: 'button', class: 'btn btn-primary', testid: 'queue-choose' }, icon('upload'), t('queue.choose'));
  const recentSel = h('select', { testid: 'queue-recent' });
  const recent = h('div', { class: 'recent', hidden: true }, field({ label: t('queue.recent'), input: recentSel }));
  const progressFill = h('span', { class: 'progress-fill' });
  const progressBar = h('span', { class: 'progress-track', role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-label': t('queue.uploading') }, progressFill);
  const progressText = h('span', { class: 'transfer-text', testid: 'queue-upload-text' });
  const cancelUpload = h('button', { type: 'button', class: 'btn btn-small', testid: 'queue-upload-cancel' }, t('common.cancel'));
  const progress = h('div', { class: 'upload-progress', testid: 'queue-upload-progress', hidden: true },
    h('span', { class: 'transfer-name' }), progressBar, h('div', { class: 'upload-progress-foot' }, progressText, cancelUpload));
  const error = h('div', { class: 'notice notice-bad', role: 'alert', testid: 'queue-upload-error', hidden: true });
  const drop = h('div', { class: 'dropzone', testid: 'queue-dropzone' },
    icon('upload', 'icon dropzone-icon'),
    h('p', { class: 'dropzone-title' }, t('queue.drop')),
    choose, input,
    h('p', { class: 'field-hint' }, t('queue.drop_hint')));
  const pickStep = h('div', { class: 'form', testid: 'queue-pick-file' }, drop, progress, error, recent);

  // --- step 2: a plate and how to queue it -------------------------------------------------------------
  const fileHead = h('div', { class: 'file-head', testid: 'queue-file' });
  const warnings = h('ul', { class: 'file-warnings', testid: 'queue-file-warnings' });
  const plates = h('div', { class: 'plates', role: 'radiogroup', 'aria-label': t('queue.plates'), testid: 'queue-plates' });
  const copies = h('input', { type: 'number', min: '1', max: '1000', step: '1', value: '1', inputmode: 'numeric', testid: 'queue-copies' });
  const priority = h('select', { testid: 'queue-priority' }, PRIORITIES.map(([v, k]) => h('option', { value: String(v) }, t(`priority.${k}`))));
  priority.value = '0';
  const target = h('select', { testid: 'queue-target' });
  const printOpts = printOptions('queue-opt');
  const options = h('details', { class: 'form-more', testid: 'queue-options' },
    h('summary', {}, t('opt.title')),
    h('div', { class: 'checks' }, printOpts.labels));
  const formError = h('p', { class: 'form-error', role: 'alert', testid: 'queue-form-error', hidden: true });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', testid: 'queue-submit' }, icon('plus'), t('queue.add'));
  const another = h('button', { type: 'button', class: 'btn btn-ghost', testid: 'queue-another' }, t('queue.another'));
  const removeFile = h('button', { type: 'button', class: 'btn btn-ghost btn-danger-text', testid: 'queue-file-delete' }, icon('trash'), t('queue.delete_file'));
  const setupStep = h('form', { class: 'form', testid: 'queue-setup', hidden: true, novalidate: true },
    fileHead, warnings,
    h('h3', { class: 'sub-title', id: 'plates-title' }, t('queue.pick_plate')), plates,
    h('div', { class: 'form-grid' },
      field({ label: t('queue.copies'), input: copies }),
      field({ label: t('queue.priority'), input: priority, hint: t('queue.priority_hint') })),
    field({ label: t('queue.target'), input: target }),
    options, formError,
    h('div', { class: 'form-actions' }, submit, another, h('span', { class: 'spacer' }), removeFile));

  const el = h('section', { class: 'panel queue-add', testid: 'queue-add', 'aria-labelledby': 'queue-add-title' },
    h('div', { class: 'panel-head' }, h('h2', { id: 'queue-add-title' }, t('queue.add_title'))),
    pickStep, setupStep);

  // --- file choice -------------------------------------------------------------------------------------
  function paintRecent() {
    show(recent, files.length > 0 && !current);
    recentSel.replaceChildren(h('option', { value: '' }, t('queue.recent_pick')),
      ...files.map((f) => h('option', { value: String(f.id) }, `${f.name} · ${fmtBytes(f.size)}`)));
    recentSel.value = '';
  }

  function showError(message) {
    error.replaceChildren(h('p', { class: 'notice-title' }, icon('alert'), t('queue.refused')), h('p', { testid: 'queue-upload-message' }, message));
    show(error, true);
  }

  async function send(file) {
    show(error, false);
    if (!ACCEPT.test(file.name)) { showError(t('queue.wrong_kind')); return; }
    if (uploading) return;
    setText(progress.firstChild, file.name);
    progressFill.style.width = '0%';
    setText(progressText, '');
    show(progress, true);
    choose.disabled = true;
    const job = upload('POST', `/api/queue/files?name=${enc(file.name)}`, file, {
      onProgress(sent, total) {
        const tot = total || file.size;
        const pct = tot ? Math.min(100, (sent / tot) * 100) : 0;
        progressFill.style.width = `${pct}%`;
        setAttr(progressBar, 'aria-valuenow', String(Math.round(pct)));
        setText(progressText, sent >= tot ? t('queue.checking') : `${fmtPercent(pct)} · ${t('transfer.of', { done: fmtBytes(sent), total: fmtBytes(tot) })}`);
      },
    });
    uploading = job;
    try {
      const { data } = await job.promise;
      if (!data || !isNum(data.id)) throw new ApiError(500, 'bad_answer', null);
      upsertFile(data);
      setFile(data);
    } catch (e) {
      if (!(e instanceof ApiError && e.code === 'aborted')) showError(uploadErrorText(e));
    } finally {
      uploading = null;
      choose.disabled = false;
      show(progress, false);
    }
  }

  choose.addEventListener('click', () => input.click());
  cancelUpload.addEventListener('click', () => uploading?.abort());
  input.addEventListener('change', () => {
    const file = input.files[0];
    input.value = '';
    if (file) send(file);
  });
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('is-over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('is-over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('is-over');
    const file = e.dataTransfer?.files?.[0];
    if (file) send(file);
  });
  recentSel.addEventListener('change', () => {
    const f = files.find((x) => String(x.id) === recentSel.value);
    if (f) setFile(f);
  });

  // --- plate picking -------------------------------------------------------------------------------------
  let plate = 1;

  function plateCard(fileId, p, count) {
    const id = nextId('plate');
    const radio = h('input', { type: 'radio', name: 'plate', value: String(p.index), id, class: 'plate-radio', testid: 'plate-radio', checked: p.index === plate });
    radio.addEventListener('change', () => { if (radio.checked) plate = p.index; });
    const facts = [
      isNum(p.prediction_s) ? h('span', { class: 'fact' }, icon('clock'), fmtDuration(p.prediction_s)) : null,
      isNum(p.layers) ? h('span', { class: 'fact' }, icon('layers'), t('queue.layers', { n: fmtNumber(p.layers) })) : null,
      isNum(p.weight_g) ? h('span', { class: 'fact' }, fmtGrams(p.weight_g)) : null,
    ];
    const objects = Array.isArray(p.objects) && p.objects.length ? p.objects.slice(0, 4).join(', ') + (p.objects.length > 4 ? ' …' : '') : '';
    return h('label', { class: 'plate', for: id, testid: 'plate', dataset: { plate: String(p.index), sliced: p.gcode_path ? 'true' : 'false' } },
      radio,
      current?.kind === '3mf' ? thumb(p.thumbnail_path ? plateThumb(fileId, p.index) : null, { alt: t('queue.plate_alt', { n: p.index }), cls: 'thumb-plate' }) : null,
      h('span', { class: 'plate-body' },
        h('strong', { class: 'plate-title' }, count > 1 || current?.kind === '3mf' ? t('queue.plate', { n: p.index }) : t('queue.gcode_plate')),
        objects ? h('span', { class: 'plate-objects' }, objects) : null,
        h('span', { class: 'plate-facts' }, facts),
        filamentList(p.filaments)));
  }

  function paintTargets(meta) {
    const model = typeof meta?.printer_model === 'string' ? meta.printer_model : null;
    const prev = target.value;
    const opts = [h('option', { value: 'any' }, model ? t('queue.target_any_model', { model }) : t('queue.target_any'))];
    for (const p of store.list()) {
      const name = printerName(p.id);
      const other = model && p.model && String(p.model).toUpperCase() !== model.toUpperCase();
      opts.push(h('option', { value: String(p.id) }, other ? t('queue.target_other_model', { name, model: p.model }) : name));
    }
    target.replaceChildren(...opts);
    target.value = [...target.options].some((o) => o.value === prev) ? prev : 'any';
  }

  function setFile(f) {
    current = f;
    const meta = f.meta && typeof f.meta === 'object' ? f.meta : {};
    const list = (Array.isArray(meta.plates) ? meta.plates : []).filter((p) => p && isNum(p.index));
    const sliced = list.filter((p) => p.gcode_path || f.kind === 'gcode');
    plate = (sliced[0] || list[0])?.index ?? 1;
    const facts = [
      meta.printer_model ? t('queue.sliced_for', { model: meta.printer_model }) : t('queue.no_model'),
      isNum(meta.nozzle_diameter) ? t('queue.nozzle', { d: fmtNumber(meta.nozzle_diameter, 1) }) : null,
      fmtBytes(f.size),
      typeof meta.slicer === 'string' && meta.slicer ? meta.slicer : null,
    ].filter(Boolean);
    fileHead.replaceChildren(icon('file', 'icon file-icon'),
      h('div', {}, h('strong', { class: 'file-title', testid: 'queue-file-name' }, f.name), h('p', { class: 'page-sub', testid: 'queue-file-facts' }, facts.join(' · '))));
    const warn = Array.isArray(meta.warnings) ? meta.warnings.filter((w) => typeof w === 'string') : [];
    warnings.replaceChildren(...warn.map((w) => h('li', {}, icon('alert'), w)));
    show(warnings, warn.length > 0);
    plates.replaceChildren(...(sliced.length ? sliced : list).map((p) => plateCard(f.id, p, list.length)));
    if (!list.length) plates.replaceChildren(h('p', { class: 'muted' }, t('queue.no_plates')));
    paintTargets(meta);
    copies.value = '1';
    formError.hidden = true;
    show(pickStep, false);
    show(setupStep, true);
    setupStep.querySelector('.plate-radio:checked, .plate-radio')?.focus();
  }

  function reset() {
    current = null;
    show(setupStep, false);
    show(pickStep, true);
    paintRecent();
  }

  another.addEventListener('click', () => { reset(); choose.focus(); });
  removeFile.addEventListener('click', async () => {
    if (!current) return;
    const ok = await confirmDialog({ title: t('queue.delete_file_title', { name: current.name }), body: t('queue.delete_file_body'), ok: t('queue.delete_file'), danger: true });
    if (!ok) return;
    try {
      await del(`/api/queue/files/${enc(current.id)}`);
      fileRemoved(current.id);
      toast(t('queue.file_deleted'), { kind: 'success' });
    } catch (e) {
      toast(errorText(e), { kind: 'error' });
    }
  });

  setupStep.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!current) return;
    const n = Number(copies.value);
    if (!Number.isInteger(n) || n < 1 || n > 1000) {
      formError.textContent = t('queue.bad_copies');
      formError.hidden = false;
      copies.setAttribute('aria-invalid', 'true');
      copies.focus();
      return;
    }
    copies.removeAttribute('aria-invalid');
    formError.hidden = true;
    submit.disabled = true;
    submit.classList.add('is-pending');
    try {
      const job = await post('/api/queue', {
        file_id: current.id, plate, copies: n, priority: Number(priority.value), target: target.value || 'any',
        options: printOpts.value(),
      });
      toast(t('queue.queued', { name: current.name, n: plate }), { kind: 'success' });
      onQueued?.(job);
      reset();
    } catch (err) {
      formError.textContent = errorText(err);
      formError.hidden = false;
    } finally {
      submit.disabled = false;
      submit.classList.remove('is-pending');
    }
  });

  // --- the list of uploaded files, kept live by the page ----------------------------------------------
  function upsertFile(f) {
    if (!f || !isNum(f.id)) return;
    files = [f, ...files.filter((x) => x.id !== f.id)];
    paintRecent();
  }

  function fileRemoved(id) {
    files = files.filter((x) => x.id !== id);
    if (current && current.id === id) reset(); else paintRecent();
  }

  async function loadFiles() {
    try {
      const res = await get('/api/queue/files');
      files = Array.isArray(res?.files) ? res.files.filter((f) => f && isNum(f.id)) : [];
      paintRecent();
    } catch { /* the page reports queue errors */ }
  }

  const offList = store.onList(() => { if (current) paintTargets(current.meta); });
  loadFiles();
  return { el, fileChanged: upsertFile, fileRemoved, reload: loadFiles, destroy: () => { offList(); uploading?.abort(); } };
}
