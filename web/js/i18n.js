// One small i18n module: English and Norwegian (bokmål). The language comes from localStorage,
// else navigator.language; switching re-renders the current page (the router listens).
import en from './locales/en.js';
import nb from './locales/nb.js';

const DICTS = { en, nb };
export const LANGUAGES = [
  { code: 'en', name: 'English', short: 'English' },
  { code: 'nb', name: 'Norsk bokmål', short: 'Norsk' },
];
const KEY = 'bambu-edge.lang';
const listeners = new Set();
let lang = 'en';
let plural = new Intl.PluralRules('en');

function detect() {
  let stored = null;
  try { stored = localStorage.getItem(KEY); } catch { /* storage may be blocked */ }
  if (stored && DICTS[stored]) return stored;
  for (const l of navigator.languages || [navigator.language || 'en']) {
    const base = String(l).toLowerCase().split('-')[0];
    if (base === 'nb' || base === 'no' || base === 'nn') return 'nb';
    if (base === 'en') return 'en';
  }
  return 'en';
}

export function initI18n() {
  setLang(detect(), false);
}

export function getLang() {
  return lang;
}

export function setLang(code, remember = true) {
  if (!DICTS[code]) code = 'en';
  const changed = code !== lang;
  lang = code;
  plural = new Intl.PluralRules(code);
  document.documentElement.lang = code;
  if (remember) {
    try { localStorage.setItem(KEY, code); } catch { /* ignore */ }
  }
  if (changed) for (const fn of listeners) fn(code);
}

export function onLangChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** t('key', {name: 'x'}) -> string with {name} replaced. With params.count, picks key.one/key.other. */
export function t(key, params) {
  const dict = DICTS[lang];
  let k = key;
  if (params && typeof params.count === 'number') {
    const form = `${key}.${plural.select(params.count)}`;
    k = form in dict || form in en ? form : `${key}.other`;
  }
  let str = dict[k] ?? en[k] ?? key;
  if (params) str = str.replace(/\{(\w+)\}/g, (m, p) => (p in params ? String(params[p]) : m));
  return str;
}

/** Like t(), but returns null when the key is missing (for optional mappings like print states). */
export function tMaybe(key, params) {
  if (!(key in DICTS[lang]) && !(key in en)) return null;
  return t(key, params);
}

/** The locale for numbers and clock times: the browser's own when it matches the UI language. */
export function locale() {
  const nav = navigator.language || '';
  const base = nav.toLowerCase().split('-')[0];
  if (lang === 'en' && base === 'en') return nav;
  return lang === 'nb' ? 'nb-NO' : 'en-GB';
}
