// Formatting of numbers, durations, clock times and printer states, in the current language.
import { t, tMaybe, locale } from './i18n.js';

export const isNum = (v) => typeof v === 'number' && Number.isFinite(v);

export function fmtNumber(v, digits = 0) {
  if (!isNum(v)) return '—';
  return new Intl.NumberFormat(locale(), { maximumFractionDigits: digits, minimumFractionDigits: digits }).format(v);
}

/** 219.5 -> "220 °C" (digits=0) or "219,5 °C" (nb, digits=1). */
export function fmtTemp(v, digits = 0) {
  return isNum(v) ? `${fmtNumber(v, digits)}\u00a0°C` : '—';
}

export function fmtPercent(v) {
  return isNum(v) ? `${fmtNumber(Math.max(0, Math.min(100, v)))}\u00a0%` : '—';
}

/** Seconds -> "1 h 31 min" / "31 min" / "< 1 min". */
export function fmtDuration(sec) {
  if (!isNum(sec) || sec < 0) return '—';
  const m = Math.round(sec / 60);
  if (sec < 60) return t('time.lt_minute');
  if (m < 60) return t('time.minutes', { m });
  const d = Math.floor(m / 1440);
  const hh = Math.floor((m % 1440) / 60);
  const mm = m % 60;
  if (d > 0) return t('time.days_hours', { d, h: hh });
  return mm ? t('time.hours_minutes', { h: hh, m: mm }) : t('time.hours', { h: hh });
}

/** Epoch seconds -> "15:42", or "Tue 15:42" when not today. */
export function fmtClock(ts) {
  if (!isNum(ts)) return '—';
  const d = new Date(ts * 1000);
  const now = new Date();
  const sameDay = d.toDateString() === now.toDateString();
  const opts = sameDay ? { hour: 'numeric', minute: '2-digit' } : { weekday: 'short', hour: 'numeric', minute: '2-digit' };
  return new Intl.DateTimeFormat(locale(), opts).format(d);
}

export function fmtDateTime(ts) {
  if (!isNum(ts)) return '—';
  return new Intl.DateTimeFormat(locale(), { dateStyle: 'medium', timeStyle: 'short' }).format(new Date(ts * 1000));
}

/** Epoch seconds -> "3 minutes ago". */
export function fmtAgo(ts) {
  if (!isNum(ts)) return '—';
  const diff = ts - Date.now() / 1000;
  const abs = Math.abs(diff);
  const rtf = new Intl.RelativeTimeFormat(locale(), { numeric: 'auto' });
  if (abs < 45) return t('time.just_now');
  if (abs < 3600) return rtf.format(Math.round(diff / 60), 'minute');
  if (abs < 86400) return rtf.format(Math.round(diff / 3600), 'hour');
  return rtf.format(Math.round(diff / 86400), 'day');
}

/** gcode_state -> words. Unknown values pass through as sent; null -> "—". */
export function printStateLabel(state) {
  if (state === null || state === undefined || state === '') return t('state.unknown');
  return tMaybe(`state.${String(state).toUpperCase()}`) ?? String(state);
}

const ACTIVE = new Set(['RUNNING', 'PREPARE', 'PAUSE', 'SLICING']);
export function isActiveJob(state) {
  return ACTIVE.has(String(state || '').toUpperCase());
}

/** A css-safe token for state-coloured badges. */
export function stateTone(state) {
  switch (String(state || '').toUpperCase()) {
    case 'RUNNING':
    case 'PREPARE':
    case 'SLICING':
      return 'busy';
    case 'PAUSE':
      return 'warn';
    case 'FAILED':
    case 'OFFLINE': // a Klipper printer whose Klippy is not ready (shut down, error)
      return 'bad';
    case 'FINISH':
      return 'good';
    case 'IDLE':
      return 'idle';
    default:
      return 'muted';
  }
}

export function linkLabel(state) {
  return tMaybe(`link.${state}`) ?? (state ? String(state) : t('link.unknown'));
}

export function linkTone(state) {
  if (state === 'connected') return 'good';
  if (state === 'connecting') return 'busy';
  if (state === 'auth_failed' || state === 'tls_mismatch') return 'bad';
  return 'muted';
}

/** "AB12CD..." -> "AB:12:CD:..." for reading a SHA-256 fingerprint aloud. */
export function fmtFingerprint(fp) {
  if (typeof fp !== 'string' || !fp) return '—';
  const hex = fp.replace(/[^0-9a-fA-F]/g, '').toUpperCase();
  return hex.match(/.{1,2}/g)?.join(':') || fp;
}

/** Only #RRGGBB or #RRGGBBAA (with or without #) from a printer becomes a CSS colour. */
export function safeColor(c) {
  if (typeof c !== 'string') return null;
  const m = /^#?([0-9a-fA-F]{6})([0-9a-fA-F]{2})?$/.exec(c.trim());
  if (!m) return null;
  return { css: `#${m[1]}${m[2] || 'FF'}`, rgb: `#${m[1].toUpperCase()}`, alpha: parseInt(m[2] || 'FF', 16) / 255 };
}

/** 1536 -> "1.5 KB", 3.2e9 -> "3 GB" (powers of 1024, as file browsers show them). */
export function fmtBytes(n) {
  if (!isNum(n) || n < 0) return '—';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
  return `${fmtNumber(v, i === 0 || v >= 100 ? 0 : 1)}\u00a0${units[i]}`;
}

/** Grams of filament: "12.3 g", "1.25 kg". */
export function fmtGrams(g) {
  if (!isNum(g)) return '—';
  if (g >= 1000) return `${fmtNumber(g / 1000, 2)}\u00a0kg`;
  return `${fmtNumber(g, g < 10 ? 1 : 0)}\u00a0g`;
}

/** Metres of filament: "3.4 m". */
export function fmtMeters(m) {
  if (!isNum(m)) return '—';
  return `${fmtNumber(m, m < 10 ? 1 : 0)}\u00a0m`;
}
