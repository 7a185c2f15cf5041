// Dark/light theme: follows prefers-color-scheme until the user picks one; the pick is remembered.
const KEY = 'bambu-edge.theme';
const media = window.matchMedia('(prefers-color-scheme: dark)');
const listeners = new Set();

function stored() {
  try {
    const v = localStorage.getItem(KEY);
    return v === 'dark' || v === 'light' ? v : null;
  } catch {
    return null;
  }
}

export function currentTheme() {
  return stored() || (media.matches ? 'dark' : 'light');
}

function apply() {
  const explicit = stored();
  if (explicit) document.documentElement.dataset.theme = explicit;
  else delete document.documentElement.dataset.theme;
  const meta = document.querySelector('meta[name="theme-color"]');
  if (meta) meta.setAttribute('content', currentTheme() === 'dark' ? '#111418' : '#f4f5f7');
  for (const fn of listeners) fn(currentTheme());
}

export function initTheme() {
  apply();
  media.addEventListener('change', () => { if (!stored()) apply(); });
}

export function setTheme(theme) {
  try { localStorage.setItem(KEY, theme); } catch { /* ignore */ }
  apply();
}

export function toggleTheme() {
  setTheme(currentTheme() === 'dark' ? 'light' : 'dark');
}

export function onThemeChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}
