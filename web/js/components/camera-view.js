// A printer's camera: a small tile on the printer card, or the full live stream (with fullscreen)
// on the printer page. The tile costs little: a JPEG camera's own stream, or for an H.264 camera a
// snapshot every few seconds. Nothing runs while the view is scrolled away or the tab is hidden; a
// camera that is off shows nothing; one that cannot be reached says why in plain words.
import { ApiError, enc, get } from '../api.js';
import { backoffMs, playJpeg, playMp4 } from '../camera-player.js';
import { h, scope, setText, show } from '../dom.js';
import { t } from '../i18n.js';
import { icon } from '../icons.js';

const SNAPSHOT_EVERY_MS = 5000;
const LOW_BANDWIDTH_KEY = 'camera.lowBandwidth'; // localStorage: the sub-stream preferred
const STALL_CHECK_MS = 4000; // a stream without a new picture this long asks the camera's status why

/** The words for a camera error: the server's plain message, or ours for the known codes. */
export function cameraErrorText(code, message) {
  const m = typeof message === 'string' ? message : '';
  if (code === 'tls_mismatch' || m.startsWith('tls_mismatch')) return t('camera.tls_mismatch');
  if (code === 'camera_off') return t('camera.off');
  return m || t('camera.unavailable');
}

export function createCameraView(id, { full = false } = {}) {
  const sc = scope();
  const img = h('img', { class: 'camera-picture', alt: t('camera.alt'), testid: 'camera-img', decoding: 'async', hidden: true });
  const video = h('video', { class: 'camera-picture', testid: 'camera-video', autoplay: true, playsinline: true, hidden: true });
  video.muted = true;
  video.playsInline = true;
  const message = h('p', { class: 'camera-message', testid: 'camera-message', role: 'status', hidden: true });
  const screen = h('div', { class: 'camera-screen' }, img, video, message);
  const fullBtn = full
    ? h('button', { type: 'button', class: 'icon-btn camera-fullscreen', testid: 'camera-fullscreen', 'aria-label': t('camera.fullscreen'), title: t('camera.fullscreen') }, icon('expand'))
    : null;
  // Offered when the camera has a scaled sub-stream: less data for a slow link, a little softer.
  const lowBtn = full
    ? h('button', { type: 'button', class: 'btn btn-small camera-low', testid: 'camera-low-bandwidth', 'aria-pressed': 'false', hidden: true }, t('camera.low_bandwidth'))
    : null;
  const el = full
    ? h('section', { class: 'panel camera-panel', testid: 'camera-panel', 'aria-label': t('camera.title'), hidden: true },
      h('div', { class: 'panel-head' }, h('h2', {}, t('camera.title')), lowBtn, fullBtn), screen)
    : h('a', { class: 'camera-tile', href: `#/printer/${enc(id)}`, testid: 'camera-tile', 'aria-label': t('camera.title'), hidden: true }, screen);
  el.dataset.cameraState = 'loading';

  let codec = null; // 'h264' | 'mjpeg' once known
  let hasSub = false; // the camera offers ?stream=sub
  let low = false;
  try { low = localStorage.getItem(LOW_BANDWIDTH_KEY) === '1'; } catch { /* storage off */ }
  let inView = false;
  let stopPlayer = null;
  let retry = null;
  let attempt = 0;
  let disposed = false;
  let lastFrameAt = 0;
  let lastTime = -1;

  const say = (text) => {
    setText(message, text || '');
    show(message, Boolean(text));
    el.dataset.cameraState = text ? 'error' : el.dataset.cameraState;
  };
  const active = () => !disposed && inView && document.visibilityState === 'visible';

  function stop() {
    clearTimeout(retry);
    retry = null;
    stopPlayer?.();
    stopPlayer = null;
  }

  function later(fn, ms) {
    clearTimeout(retry);
    retry = setTimeout(() => { retry = null; if (active()) fn(); }, ms);
  }

  // Why a stream ended: the camera's status says (its error), else "reconnecting".
  async function explain() {
    try {
      const st = await get(`/api/printers/${enc(id)}/camera`);
      if (st?.error) say(cameraErrorText(null, st.error));
      else say(t('camera.reconnecting'));
    } catch {
      say(t('camera.reconnecting'));
    }
  }

  function onState(state, info) {
    if (disposed) return;
    if (state === 'playing') {
      lastFrameAt = Date.now();
      attempt = 0;
      say('');
      el.dataset.cameraState = 'playing';
      return;
    }
    if (state === 'connecting') return;
    stopPlayer = null;
    if (state === 'unsupported') {
      say(t('camera.unsupported'));
      return;
    }
    if (!info?.gotData || state !== 'closed' || info.code !== 1012) explain();
    const wait = backoffMs(attempt);
    attempt += 1;
    later(play, wait);
  }

  // A socket can stay open while the camera behind it fails (a JPEG camera is retried upstream
  // without closing its viewers): no new picture for a while, then show the camera's error.
  sc.interval(async () => {
    if (!stopPlayer || !active()) return;
    const moving = codec === 'mjpeg' ? Date.now() - lastFrameAt < STALL_CHECK_MS : video.currentTime !== lastTime;
    lastTime = video.currentTime;
    if (moving) return;
    try {
      const st = await get(`/api/printers/${enc(id)}/camera`);
      if (st?.error && stopPlayer) say(cameraErrorText(null, st.error));
    } catch { /* the next check tries again */ }
  }, STALL_CHECK_MS);

  async function snapshotOnce() {
    try {
      const res = await fetch(`/api/printers/${enc(id)}/camera/snapshot.jpg`, { credentials: 'same-origin', cache: 'no-store' });
      if (!active()) return;
      if (!res.ok) {
        let body = null;
        try { body = await res.json(); } catch { /* not JSON */ }
        say(cameraErrorText(body?.error, body?.message));
        show(img, Boolean(img.getAttribute('src')));
      } else {
        const url = URL.createObjectURL(await res.blob());
        const prev = img.getAttribute('src');
        img.src = url;
        if (prev?.startsWith('blob:')) URL.revokeObjectURL(prev);
        show(img, true);
        say('');
        el.dataset.cameraState = 'playing';
      }
    } catch {
      if (active()) say(t('camera.reconnecting'));
    }
    later(snapshotOnce, SNAPSHOT_EVERY_MS);
  }

  function play() {
    stop();
    if (!active() || !codec) return;
    if (codec === 'mjpeg') {
      show(img, true);
      stopPlayer = playJpeg(id, img, { onState });
    } else if (full) {
      show(video, true);
      stopPlayer = playMp4(id, video, { onState, stream: hasSub && low ? 'sub' : 'main' });
    } else {
      snapshotOnce();
    }
  }

  function refresh() {
    if (active()) { if (!stopPlayer && !retry) play(); } else stop();
  }

  async function load() {
    try {
      const st = await get(`/api/printers/${enc(id)}/camera`);
      if (disposed) return;
      if (!st || st.state === 'off' || (st.codec !== 'h264' && st.codec !== 'mjpeg')) return; // off: nothing
      if (full && st.codec === 'h264') {
        // Asked before ``codec`` is set: nothing plays until the stream to play is known.
        try {
          hasSub = Boolean(await get(`/api/printers/${enc(id)}/camera?stream=sub`));
        } catch { hasSub = false; } // 404: no sub-stream configured
        if (disposed) return;
        show(lowBtn, hasSub);
        lowBtn.setAttribute('aria-pressed', String(hasSub && low));
      }
      codec = st.codec;
      el.dataset.codec = codec;
      show(el, true);
      if (st.error) say(cameraErrorText(null, st.error));
      refresh();
    } catch (e) {
      if (e instanceof ApiError && (e.status === 404 || e.status === 401)) return;
      // The camera component is not running (503): the printer has no camera to show now.
    }
  }

  if (typeof IntersectionObserver === 'function') {
    const io = new IntersectionObserver((entries) => {
      inView = entries.some((x) => x.isIntersecting);
      refresh();
    });
    io.observe(el);
    sc.add(() => io.disconnect());
  } else {
    inView = true;
  }
  sc.listen(document, 'visibilitychange', refresh);
  if (lowBtn) {
    sc.listen(lowBtn, 'click', () => {
      low = !low;
      lowBtn.setAttribute('aria-pressed', String(low));
      try { localStorage.setItem(LOW_BANDWIDTH_KEY, low ? '1' : '0'); } catch { /* storage off */ }
      stop();
      play();
    });
  }
  if (fullBtn) {
    sc.listen(fullBtn, 'click', () => {
      if (document.fullscreenElement) { document.exitFullscreen?.(); return; }
      if (screen.requestFullscreen) screen.requestFullscreen().catch(() => {});
      else video.webkitEnterFullscreen?.(); // iPhone: only the video element goes fullscreen
    });
  }
  sc.add(() => {
    disposed = true;
    stop();
    const src = img.getAttribute('src');
    if (src?.startsWith('blob:')) URL.revokeObjectURL(src);
  });
  load();
  return { el, destroy: () => sc.dispose() };
}
