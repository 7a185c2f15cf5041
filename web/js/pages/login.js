// Login form. Shows why we are here (session ended) and the server's throttling in plain words.
import { ApiError } from '../api.js';
import { app } from '../app-state.js';
import { emit } from '../bus.js';
import { field, h } from '../dom.js';
import { t } from '../i18n.js';
import { navigate } from '../router.js';
import { login } from '../session.js';
import { errorText } from '../toast.js';

export function mount(root) {
  const username = h('input', { name: 'username', autocomplete: 'username', required: true, autocapitalize: 'none', spellcheck: 'false' });
  const password = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const error = h('p', { class: 'form-error', role: 'alert', testid: 'login-error', hidden: true });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary btn-block', testid: 'login-submit' }, t('login.submit'));
  const flash = app.flash
    ? h('div', { class: 'notice notice-warn', role: 'status', testid: 'login-message' }, h('p', {}, app.flash))
    : null;
  const form = h('form', { class: 'form', testid: 'login-form', id: 'login-form', novalidate: true },
    field({ label: t('login.username'), input: username, testid: 'login-username' }),
    field({ label: t('login.password'), input: password, testid: 'login-password' }),
    error, submit);

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.hidden = true;
    if (!username.value.trim() || !password.value) {
      error.textContent = t('login.missing');
      error.hidden = false;
      (username.value.trim() ? password : username).focus();
      return;
    }
    submit.disabled = true;
    submit.classList.add('is-pending');
    try {
      await login(username.value.trim(), password.value);
      emit('auth:gained');
      const to = app.returnTo && app.returnTo !== '/login' ? app.returnTo : '/';
      app.returnTo = null;
      navigate(to, { replace: true });
    } catch (err) {
      error.textContent = err instanceof ApiError && err.status === 401 ? t('login.bad') : errorText(err);
      error.hidden = false;
      password.select();
      password.focus();
    } finally {
      submit.disabled = false;
      submit.classList.remove('is-pending');
    }
  });

  root.appendChild(h('div', { class: 'auth-wrap' },
    h('section', { class: 'panel auth-card', testid: 'login-page' },
      h('div', { class: 'auth-head' }, h('h1', {}, t('login.title')), h('p', {}, t('login.intro'))),
      flash, form)));
  (username.value ? password : username).focus();
}
