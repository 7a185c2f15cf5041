// Settings > Fan-out (admin): where slicers and Home Assistant connect instead of the printer
// (GET /api/fanout): per printer its fan-out access code (bambu-edge's, never the printer's),
// with copy and Rotate, and the command groups its clients may send (PUT /api/fanout/printers/{id}).
import { ApiError, enc, get, post, put } from '../api.js';
import { confirmDialog } from '../dialog.js';
import { clear, h } from '../dom.js';
import { t, tMaybe } from '../i18n.js';
import { icon } from '../icons.js';
import { printerName } from '../store.js';
import { errorText, toast } from '../toast.js';

const WILDCARD = new Set(['0.0.0.0', '::', '']);

// The address clients use: the one it listens on, or (listening on all) the one this browser
// reached the unit at.
function hostHint(bind) {
  return typeof bind === 'string' && !WILDCARD.has(bind) ? bind : window.location.hostname;
}

async function copyText(text, input, btn) {
  let ok = false;
  try { await navigator.clipboard.writeText(text); ok = true; } catch { /* not a secure context */ }
  if (!ok) { input.select(); try { ok = document.execCommand('copy'); } catch { ok = false; } }
  btn.replaceChildren(icon(ok ? 'check' : 'copy'), ok ? t('tokens.copied') : t('tokens.copy_manual'));
  if (!ok) input.select();
}

export function fanoutTab() {
  const where = h('div', { testid: 'fanout-endpoint', 'aria-live': 'polite' });
  const list = h('ul', { class: 'list', testid: 'fanout-list' });
  const empty = h('p', { class: 'page-sub', testid: 'fanout-empty', hidden: true }, t('fanout.no_printers'));

  function row(p, groups) {
    const label = printerName(p.id);
    const code = h('input', { type: 'text', readOnly: true, value: p.access_code, testid: 'fanout-code', 'aria-label': t('fanout.code_of', { name: label }) });
    const copy = h('button', { type: 'button', class: 'btn', testid: 'fanout-copy' }, icon('copy'), t('tokens.copy'));
    copy.addEventListener('click', () => copyText(code.value, code, copy));
    const rotate = h('button', { type: 'button', class: 'btn btn-danger', testid: 'fanout-rotate' }, icon('refresh'), t('fanout.rotate'));
    const granted = new Set(Array.isArray(p.grants) ? p.grants : []);
    const boxes = groups.map((g) => h('input', { type: 'checkbox', name: g, checked: granted.has(g), testid: `fanout-grant-${g}` }));
    const checks = h('fieldset', { class: 'checks', testid: 'fanout-grants' },
      h('legend', {}, t('fanout.grants')),
      boxes.map((b, i) => h('label', { class: 'check' }, b, h('span', {}, tMaybe(`fanout.group.${groups[i]}`) ?? groups[i]))));
    const li = h('li', { class: 'list-item', testid: 'fanout-row', dataset: { printerId: p.id } },
      h('div', { class: 'list-main' },
        h('span', { class: 'list-title' }, icon('printer'), label),
        h('span', { class: 'list-sub' }, t('fanout.serial', { serial: p.serial })),
        h('div', { class: 'token-value' }, code, copy, rotate),
        checks));

    function show(entry) {
      code.value = entry.access_code;
      copy.replaceChildren(icon('copy'), t('tokens.copy'));
      const now = new Set(Array.isArray(entry.grants) ? entry.grants : []);
      boxes.forEach((b, i) => { b.checked = now.has(groups[i]); });
    }

    rotate.addEventListener('click', async () => {
      const ok = await confirmDialog({ title: t('fanout.rotate_title', { name: label }), body: t('fanout.rotate_body'), ok: t('fanout.rotate'), danger: true });
      if (!ok) return;
      rotate.disabled = true;
      try {
        show(await post(`/api/fanout/printers/${enc(p.id)}/rotate`));
        toast(t('fanout.rotated', { name: label }), { kind: 'success' });
      } catch (e) {
        toast(errorText(e), { kind: 'error' });
      } finally {
        rotate.disabled = false;
      }
    });

    checks.addEventListener('change', async () => {
      const want = groups.filter((_, i) => boxes[i].checked);
      boxes.forEach((b) => { b.disabled = true; }); // one change at a time: each PUT is the whole set
      try {
        show(await put(`/api/fanout/printers/${enc(p.id)}`, { grants: want }));
        toast(t('fanout.saved', { name: label }), { kind: 'success' });
      } catch (e) {
        toast(errorText(e), { kind: 'error' });
        load();
      } finally {
        boxes.forEach((b) => { b.disabled = false; });
      }
    });
    return li;
  }

  async function offNotice() {
    // Off in the config, or failed at start: /api/health says which, in its own words.
    let error = null;
    try {
      const health = await get('/api/health', { auth: false });
      const c = health?.components?.fanout;
      if (c?.state === 'failed') error = typeof c.error === 'string' ? c.error : '';
    } catch { /* the notice below is still right */ }
    return error === null
      ? h('div', { class: 'notice', testid: 'fanout-off' }, h('p', {}, t('fanout.off')))
      : h('div', { class: 'notice notice-bad', role: 'alert', testid: 'fanout-failed' },
        h('p', { class: 'notice-title' }, icon('alert'), t('fanout.failed')), error ? h('p', {}, error) : null);
  }

  async function load() {
    try {
      const o = await get('/api/fanout');
      clear(list);
      if (!o || typeof o.port !== 'number') {
        clear(where).appendChild(await offNotice());
        empty.hidden = true;
        return;
      }
      const host = hostHint(o.bind);
      clear(where).appendChild(h('dl', { class: 'kv' },
        h('dt', {}, t('fanout.address')), h('dd', { testid: 'fanout-address' }, `${host}:${o.port}`),
        h('dt', {}, t('fanout.user')), h('dd', { testid: 'fanout-user' }, 'bblp')));
      const groups = Array.isArray(o.groups) ? o.groups.filter((g) => typeof g === 'string') : [];
      for (const p of Array.isArray(o.printers) ? o.printers : []) {
        if (p && typeof p.id === 'string' && typeof p.access_code === 'string') list.appendChild(row(p, groups));
      }
      empty.hidden = list.children.length > 0;
    } catch (e) {
      if (e instanceof ApiError && e.status === 503) clear(where).appendChild(await offNotice());
      else if (!(e instanceof ApiError && e.status === 401)) toast(errorText(e), { kind: 'error' });
    }
  }

  load();
  return [
    h('section', { class: 'panel', testid: 'fanout-panel' },
      h('div', { class: 'panel-head' }, h('h2', {}, t('fanout.title'))),
      h('p', { class: 'page-sub' }, t('fanout.intro')), where),
    h('section', { class: 'panel' },
      h('div', { class: 'panel-head' }, h('h2', {}, t('fanout.printers'))),
      h('p', { class: 'field-hint' }, t('fanout.grants_hint')), list, empty),
  ];
}
