// Settings: Account (password), API tokens, Users (admin), Printers (admin), Fan-out (admin),
// Backup (admin).
import { ApiError, asList, del, enc, get, post } from '../api.js';
import { backupTab } from '../components/backup-panel.js';
import { fanoutTab } from '../components/fanout-panel.js';
import { printerAdmin } from '../components/printer-admin.js';
import { confirmDialog } from '../dialog.js';
import { clear, field, h, scope } from '../dom.js';
import { fmtDateTime, isNum } from '../format.js';
import { t, tMaybe } from '../i18n.js';
import { icon } from '../icons.js';
import { navigate } from '../router.js';
import { isAdmin, user } from '../session.js';
import { errorText, toast } from '../toast.js';

const TABS = [
  { id: 'account', icon: 'lock' },
  { id: 'tokens', icon: 'key' },
  { id: 'users', icon: 'users', admin: true },
  { id: 'printers', icon: 'printer', admin: true },
  { id: 'fanout', icon: 'globe', admin: true },
  { id: 'backup', icon: 'download', admin: true },
];

function ts(v) {
  if (isNum(v)) return fmtDateTime(v);
  if (typeof v === 'string' && v) { const d = Date.parse(v); if (!Number.isNaN(d)) return fmtDateTime(d / 1000); }
  return null;
}

function accountTab() {
  const u = user();
  const current = h('input', { type: 'password', autocomplete: 'current-password', name: 'current' });
  const next = h('input', { type: 'password', autocomplete: 'new-password', name: 'new' });
  const confirm = h('input', { type: 'password', autocomplete: 'new-password', name: 'confirm' });
  const error = h('p', { class: 'form-error', role: 'alert', testid: 'password-error', hidden: true });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', testid: 'password-submit' }, t('account.change'));
  const form = h('form', { class: 'form', testid: 'password-form', novalidate: true },
    field({ label: t('account.current'), input: current, testid: 'password-current' }),
    h('div', { class: 'form-grid' },
      field({ label: t('account.new'), input: next, testid: 'password-new' }),
      field({ label: t('setup.confirm'), input: confirm, testid: 'password-confirm' })),
    h('p', { class: 'field-hint' }, t('account.others_logged_out')),
    error, h('div', { class: 'form-actions' }, submit));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const fail = (m, i) => { error.textContent = m; error.hidden = false; i?.focus(); };
    if (!current.value) return fail(t('account.need_current'), current);
    if (!next.value) return fail(t('setup.need_password'), next);
    if (next.value !== confirm.value) return fail(t('setup.mismatch'), confirm);
    error.hidden = true;
    submit.disabled = true;
    try {
      // auth:false: a 401 here most likely means "wrong current password", not "session over".
      await post('/api/auth/password', { current: current.value, new: next.value }, { auth: false });
      form.reset();
      toast(t('account.changed'), { kind: 'success' });
    } catch (err) {
      const wrong = err instanceof ApiError && [400, 401, 403].includes(err.status) && err.code !== 'csrf';
      fail(wrong ? (err.message || t('account.wrong_current')) : errorText(err), current);
    } finally {
      submit.disabled = false;
    }
  });
  return [
    h('section', { class: 'panel', testid: 'account-panel' },
      h('div', { class: 'panel-head' }, h('h2', {}, t('account.you'))),
      h('dl', { class: 'kv' },
        h('dt', {}, t('login.username')), h('dd', { testid: 'account-name' }, u?.name || ''),
        h('dt', {}, t('users.role')), h('dd', { testid: 'account-role' }, tMaybe(`role.${u?.role}`) ?? String(u?.role || '')))),
    h('section', { class: 'panel' }, h('div', { class: 'panel-head' }, h('h2', {}, t('account.password'))), form),
  ];
}

function tokensTab(sc) {
  const list = h('ul', { class: 'list', testid: 'token-list' });
  const empty = h('p', { class: 'page-sub', testid: 'token-list-empty', hidden: true }, t('tokens.none'));
  const once = h('div', { testid: 'token-once-slot', 'aria-live': 'polite' });
  const name = h('input', { name: 'name', autocomplete: 'off', maxlength: '64', placeholder: t('tokens.name_placeholder') });
  const error = h('p', { class: 'form-error', role: 'alert', hidden: true, testid: 'token-error' });
  const create = h('button', { type: 'submit', class: 'btn btn-primary', testid: 'token-create' }, icon('plus'), t('tokens.create'));
  const form = h('form', { class: 'form', testid: 'token-form', novalidate: true },
    field({ label: t('tokens.name'), input: name, testid: 'token-name', hint: t('tokens.name_hint') }), error, h('div', { class: 'form-actions' }, create));

  function showOnce(res, label) {
    const value = h('input', { type: 'text', readOnly: true, value: res.token, testid: 'token-value', 'aria-label': t('tokens.value') });
    const copy = h('button', { type: 'button', class: 'btn', testid: 'token-copy' }, icon('copy'), t('tokens.copy'));
    copy.addEventListener('click', async () => {
      let ok = false;
      try { await navigator.clipboard.writeText(res.token); ok = true; } catch { /* not a secure context */ }
      if (!ok) { value.select(); try { ok = document.execCommand('copy'); } catch { ok = false; } }
      copy.replaceChildren(icon(ok ? 'check' : 'copy'), ok ? t('tokens.copied') : t('tokens.copy_manual'));
      if (!ok) value.select();
    });
    const dismiss = h('button', { type: 'button', class: 'btn btn-ghost', testid: 'token-dismiss', onclick: () => clear(once) }, t('tokens.done'));
    clear(once).appendChild(h('div', { class: 'notice notice-good token-once', testid: 'token-once', role: 'status' },
      h('p', { class: 'notice-title' }, icon('key'), t('tokens.created', { name: label })),
      h('p', {}, t('tokens.once')),
      h('div', { class: 'token-value' }, value, copy),
      dismiss));
    value.focus();
    value.select();
  }

  async function load() {
    try {
      const tokens = asList(await get('/api/tokens'), 'tokens');
      clear(list);
      for (const tk of tokens) {
        if (!tk || tk.id === undefined) continue;
        const label = typeof tk.name === 'string' && tk.name ? tk.name : String(tk.id);
        const meta = [];
        const c = ts(tk.created_at); if (c) meta.push(t('tokens.created_at', { time: c }));
        const lu = ts(tk.last_used_at ?? tk.last_used); if (lu) meta.push(t('tokens.last_used', { time: lu }));
        const ex = ts(tk.expires_at); if (ex) meta.push(t('tokens.expires', { time: ex }));
        list.appendChild(h('li', { class: 'list-item', testid: 'token-row', dataset: { tokenId: String(tk.id) } },
          h('div', { class: 'list-main' }, h('span', { class: 'list-title' }, icon('key'), label), meta.length ? h('span', { class: 'list-sub' }, meta.join(' · ')) : null),
          h('button', { type: 'button', class: 'btn btn-small btn-danger', testid: 'token-revoke', 'aria-label': t('tokens.revoke_named', { name: label }), onclick: () => revoke(tk.id, label) }, t('tokens.revoke'))));
      }
      empty.hidden = list.children.length > 0;
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 401)) toast(errorText(e), { kind: 'error' });
    }
  }

  async function revoke(id, label) {
    const ok = await confirmDialog({ title: t('tokens.revoke_title', { name: label }), body: t('tokens.revoke_body'), ok: t('tokens.revoke'), danger: true });
    if (!ok) return;
    try {
      await del(`/api/tokens/${enc(id)}`);
      toast(t('tokens.revoked', { name: label }), { kind: 'success' });
      load();
    } catch (e) {
      toast(errorText(e), { kind: 'error' });
    }
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const label = name.value.trim();
    if (!label) { error.textContent = t('tokens.need_name'); error.hidden = false; name.focus(); return; }
    error.hidden = true;
    create.disabled = true;
    try {
      const res = await post('/api/tokens', { name: label });
      if (!res || typeof res.token !== 'string') throw new ApiError(500, 'bad_response', t('error.generic'));
      form.reset();
      showOnce(res, label);
      load();
    } catch (err) {
      error.textContent = errorText(err);
      error.hidden = false;
    } finally {
      create.disabled = false;
    }
  });
  load();
  sc.add(() => clear(once)); // the token never outlives the page
  return [
    h('section', { class: 'panel', testid: 'tokens-panel' },
      h('div', { class: 'panel-head' }, h('h2', {}, t('tokens.title'))),
      h('p', { class: 'page-sub' }, t('tokens.intro')), once, form),
    h('section', { class: 'panel' }, h('div', { class: 'panel-head' }, h('h2', {}, t('tokens.yours'))), list, empty),
  ];
}

function usersTab() {
  const list = h('ul', { class: 'list', testid: 'user-list' });
  const name = h('input', { name: 'name', autocomplete: 'off', autocapitalize: 'none', spellcheck: 'false' });
  const password = h('input', { name: 'password', type: 'password', autocomplete: 'new-password' });
  const role = h('select', { name: 'role' }, h('option', { value: 'user' }, t('role.user')), h('option', { value: 'admin' }, t('role.admin')));
  const error = h('p', { class: 'form-error', role: 'alert', hidden: true, testid: 'user-error' });
  const add = h('button', { type: 'submit', class: 'btn btn-primary', testid: 'user-create' }, icon('plus'), t('users.add'));
  const form = h('form', { class: 'form', testid: 'user-form', novalidate: true },
    h('div', { class: 'form-grid' },
      field({ label: t('login.username'), input: name, testid: 'user-name' }),
      field({ label: t('login.password'), input: password, testid: 'user-password' }),
      field({ label: t('users.role'), input: role, testid: 'user-role' })),
    error, h('div', { class: 'form-actions' }, add));

  async function load() {
    try {
      const users = asList(await get('/api/users'), 'users');
      const me = user();
      clear(list);
      for (const u of users) {
        if (!u || u.id === undefined) continue;
        const label = typeof u.name === 'string' && u.name ? u.name : String(u.id);
        const self = me && String(me.id) === String(u.id);
        list.appendChild(h('li', { class: 'list-item', testid: 'user-row', dataset: { userId: String(u.id) } },
          h('div', { class: 'list-main' },
            h('span', { class: 'list-title' }, label, h('span', { class: `badge no-dot ${u.role === 'admin' ? 'tone-busy' : 'tone-idle'}` }, tMaybe(`role.${u.role}`) ?? String(u.role || '')),
              self ? h('span', { class: 'chip' }, t('users.you')) : null),
            ts(u.created_at) ? h('span', { class: 'list-sub' }, t('tokens.created_at', { time: ts(u.created_at) })) : null),
          self ? null : h('button', { type: 'button', class: 'btn btn-small btn-danger', testid: 'user-delete', 'aria-label': t('users.delete_named', { name: label }), onclick: () => remove(u.id, label) }, icon('trash'), t('common.remove'))));
      }
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 401)) toast(errorText(e), { kind: 'error' });
    }
  }

  async function remove(id, label) {
    const ok = await confirmDialog({ title: t('users.delete_title', { name: label }), body: t('users.delete_body'), ok: t('common.remove'), danger: true });
    if (!ok) return;
    try {
      await del(`/api/users/${enc(id)}`);
      toast(t('users.deleted', { name: label }), { kind: 'success' });
      load();
    } catch (e) {
      toast(errorText(e), { kind: 'error' });
    }
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const fail = (m, i) => { error.textContent = m; error.hidden = false; i?.focus(); };
    if (!name.value.trim()) return fail(t('setup.need_username'), name);
    if (!password.value) return fail(t('setup.need_password'), password);
    error.hidden = true;
    add.disabled = true;
    try {
      await post('/api/users', { name: name.value.trim(), password: password.value, role: role.value });
      toast(t('users.added', { name: name.value.trim() }), { kind: 'success' });
      form.reset();
      load();
    } catch (err) {
      fail(errorText(err), name);
    } finally {
      add.disabled = false;
    }
  });
  load();
  return [
    h('section', { class: 'panel', testid: 'users-panel' }, h('div', { class: 'panel-head' }, h('h2', {}, t('users.title'))), list),
    h('section', { class: 'panel' }, h('div', { class: 'panel-head' }, h('h2', {}, t('users.add_title'))), form),
  ];
}

function printersTab(sc) {
  const admin = printerAdmin();
  sc.add(admin.destroy);
  return [
    h('section', { class: 'panel', testid: 'printers-panel' }, h('div', { class: 'panel-head' }, h('h2', {}, t('printers.title'))), admin.el),
    h('section', { class: 'panel' }, h('div', { class: 'panel-head' }, h('h2', {}, t('printers.add_title'))), admin.formEl),
  ];
}

export function mount(root, params) {
  const tabId = params.tab || 'account';
  const tab = TABS.find((x) => x.id === tabId);
  if (!tab || (tab.admin && !isAdmin())) { navigate('/settings', { replace: true }); return null; }
  const sc = scope();
  const tabs = h('nav', { class: 'tabs', 'aria-label': t('settings.sections') },
    TABS.filter((x) => !x.admin || isAdmin()).map((x) => h('a', {
      class: ['tab', x.id === tabId && 'is-active'], href: `#/settings/${x.id}`, testid: `settings-tab-${x.id}`,
      'aria-current': x.id === tabId ? 'page' : null,
    }, icon(x.icon), t(`settings.${x.id}`))));
  const body = tabId === 'tokens' ? tokensTab(sc) : tabId === 'users' ? usersTab() : tabId === 'printers' ? printersTab(sc) : tabId === 'fanout' ? fanoutTab() : tabId === 'backup' ? backupTab() : accountTab();
  root.appendChild(h('div', { class: 'page', testid: `settings-${tabId}` },
    h('div', { class: 'page-head' }, h('h1', {}, t('settings.title'))),
    tabs, h('div', { class: 'settings-body' }, body)));
  return () => sc.dispose();
}
