// First-run wizard: 1. create the admin account, 2. add printers (with a connection test),
// 3. done. An admin can come back to #/setup later; it then starts at step 2.
import { ApiError, post } from '../api.js';
import { app } from '../app-state.js';
import { emit } from '../bus.js';
import { printerAdmin } from '../components/printer-admin.js';
import { field, h, scope } from '../dom.js';
import { t } from '../i18n.js';
import { icon } from '../icons.js';
import { navigate } from '../router.js';
import { loadSession } from '../session.js';
import { errorText } from '../toast.js';

const STEPS = ['admin', 'printers', 'done'];

export function mount(root) {
  const sc = scope();
  let step = app.needsAdmin ? 'admin' : 'printers';
  const card = h('section', { class: 'panel auth-card wide', testid: 'setup-wizard' });
  root.appendChild(h('div', { class: 'auth-wrap' }, card));

  function stepper() {
    const cur = STEPS.indexOf(step);
    const items = [];
    STEPS.forEach((s, i) => {
      if (i) items.push(h('li', { class: 'sep', 'aria-hidden': 'true' }));
      items.push(h('li', { class: [i === cur && 'is-current', i < cur && 'is-done'], 'aria-current': i === cur ? 'step' : null, testid: `wizard-stepper-${s}` }, h('span', { class: 'step-label' }, t(`setup.step_${s}`))));
    });
    return h('ol', { class: 'steps', 'aria-label': t('setup.progress') }, items);
  }

  function adminStep() {
    const username = h('input', { name: 'username', autocomplete: 'username', required: true, autocapitalize: 'none', spellcheck: 'false', value: 'admin' });
    const password = h('input', { name: 'password', type: 'password', autocomplete: 'new-password', required: true });
    const confirm = h('input', { name: 'confirm', type: 'password', autocomplete: 'new-password', required: true });
    const error = h('p', { class: 'form-error', role: 'alert', testid: 'setup-admin-error', hidden: true });
    const submit = h('button', { type: 'submit', class: 'btn btn-primary', testid: 'setup-admin-submit' }, t('setup.create_admin'));
    const form = h('form', { class: 'form', testid: 'setup-admin-form', novalidate: true },
      field({ label: t('login.username'), input: username, testid: 'setup-username' }),
      h('div', { class: 'form-grid' },
        field({ label: t('setup.password'), input: password, testid: 'setup-password', hint: t('setup.password_hint') }),
        field({ label: t('setup.confirm'), input: confirm, testid: 'setup-password-confirm' })),
      error, h('div', { class: 'form-actions' }, submit));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const fail = (msg, input) => { error.textContent = msg; error.hidden = false; input?.focus(); };
      if (!username.value.trim()) return fail(t('setup.need_username'), username);
      if (!password.value) return fail(t('setup.need_password'), password);
      if (password.value !== confirm.value) return fail(t('setup.mismatch'), confirm);
      error.hidden = true;
      submit.disabled = true;
      submit.classList.add('is-pending');
      try {
        await post('/api/setup/admin', { username: username.value.trim(), password: password.value }, { auth: false });
        await loadSession();
        emit('auth:gained');
        go('printers');
      } catch (err) {
        if (err instanceof ApiError && err.status === 409) {
          app.needsAdmin = false;
          app.flash = t('setup.already');
          navigate('/login', { replace: true });
          return;
        }
        fail(errorText(err), password);
      } finally {
        submit.disabled = false;
        submit.classList.remove('is-pending');
      }
    });
    setTimeout(() => password.focus());
    return h('div', { class: 'form', testid: 'wizard-step-admin' },
      h('div', { class: 'auth-head' }, h('h1', {}, t('setup.welcome')), h('p', {}, t('setup.admin_intro'))), form);
  }

  function printersStep() {
    const admin = printerAdmin();
    sc.add(admin.destroy);
    const finish = h('button', { type: 'button', class: 'btn btn-primary', testid: 'wizard-finish', onclick: () => go('done') }, t('setup.finish'));
    return h('div', { class: 'form', testid: 'wizard-step-printers' },
      h('div', { class: 'auth-head' }, h('h1', {}, t('setup.printers_title')), h('p', {}, t('setup.printers_intro'))),
      h('section', { class: 'wizard-section' }, h('h2', {}, t('setup.your_printers')), admin.el),
      h('section', { class: 'wizard-section' }, h('h2', {}, t('printers.add_title')), admin.formEl),
      h('div', { class: 'wizard-footer' }, h('p', { class: 'field-hint' }, t('setup.later')), finish));
  }

  function doneStep() {
    const go_ = h('a', { class: 'btn btn-primary', href: '#/', testid: 'wizard-go-dashboard' }, t('setup.open_dashboard'));
    setTimeout(() => go_.focus());
    return h('div', { class: 'form', testid: 'wizard-step-done' },
      h('div', { class: 'auth-head' }, h('h1', {}, icon('check'), ' ', t('setup.done_title')), h('p', {}, t('setup.done_body'))),
      h('div', { class: 'form-actions' }, go_));
  }

  function go(s) {
    sc.dispose();
    step = s;
    const body = s === 'admin' ? adminStep() : s === 'printers' ? printersStep() : doneStep();
    card.dataset.step = s;
    card.replaceChildren(stepper(), body);
    const hd = card.querySelector('h1');
    if (hd && s !== 'admin') { hd.tabIndex = -1; hd.focus(); }
  }
  go(step);
  return () => sc.dispose();
}
