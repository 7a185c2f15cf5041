// Playing a printer's camera (GET /api/printers/{id}/camera/ws). H.264 cameras send fragmented MP4:
// the init segment, then moof+mdat fragments, appended to a Media Source Extensions buffer
// (ManagedMediaSource on iPhone Safari) that is kept a few seconds long and played at its live edge.
// JPEG cameras send one JPEG per message, shown in an <img> through object URLs (each revoked once
// the next is shown). Pure helpers are exported for the tests.

const LIVE_LAG_S = 1.5; // further behind the newest frame than this: jump to it
// Closer than this is not kept: the newest 200 ms fragment arrives whole, so the playhead needs a
// fragment's worth of video ahead of it. Between the two, play a little faster to catch up (a
// player that started late otherwise stays that late: measured 0.84 s from frame to screen).
const TARGET_LAG_S = 0.25;
const CATCH_UP_RATE = 1.15;
const KEEP_BEHIND_S = 6; // what stays in the buffer behind the playhead
const MAX_PENDING = 120; // fragments waiting for the SourceBuffer; beyond this the viewer restarts
const BACKOFF_MS = [1000, 2000, 4000, 8000, 15000, 30000];
export const DEFAULT_CODEC = 'avc1.42E01E'; // Constrained Baseline 3.0: every MSE browser plays it

const hex = (b) => b.toString(16).padStart(2, '0').toUpperCase();

/** 'avc1.PPCCLL' from the init segment's avcC box (profile, compatibility, level), else null. */
export function codecFromInit(buf) {
  const b = new Uint8Array(buf);
  for (let i = 4; i + 8 <= b.length; i += 1) {
    // 'avcC' then configurationVersion (1), profile, compatibility, level
    if (b[i] === 0x61 && b[i + 1] === 0x76 && b[i + 2] === 0x63 && b[i + 3] === 0x43 && b[i + 4] === 1) {
      return `avc1.${hex(b[i + 5])}${hex(b[i + 6])}${hex(b[i + 7])}`;
    }
  }
  return null;
}

/** The MediaSource class to use: ManagedMediaSource where it exists (iPhone Safari has only it). */
export function mediaSourceClass(win = window) {
  return win.ManagedMediaSource || win.MediaSource || null;
}

/** The camera socket's URL; ``stream`` 'sub' is the camera's scaled sub-stream (low bandwidth). */
export function cameraWsUrl(id, loc = location, stream = 'main') {
  const proto = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  const query = stream === 'sub' ? '?stream=sub' : '';
  return `${proto}//${loc.host}/api/printers/${encodeURIComponent(id)}/camera/ws${query}`;
}

export const backoffMs = (attempt) => BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)];

/**
 * One live connection to the camera socket. ``onFrame(ArrayBuffer)`` gets each message; ``onOpen``
 * when the socket opens; ``onClose({code, reason, gotData})`` when it ends. Reconnecting is the
 * caller's decision (it knows whether anyone still watches).
 */
function openSocket(id, { onOpen, onFrame, onClose, stream }) {
  const ws = new WebSocket(cameraWsUrl(id, location, stream));
  ws.binaryType = 'arraybuffer';
  let gotData = false;
  ws.onopen = () => onOpen?.();
  ws.onmessage = (ev) => {
    if (!(ev.data instanceof ArrayBuffer)) return;
    gotData = true;
    onFrame(ev.data);
  };
  ws.onclose = (ev) => onClose?.({ code: ev.code, reason: ev.reason, gotData });
  return () => {
    ws.onopen = ws.onmessage = ws.onclose = null;
    if (ws.readyState <= 1) ws.close(1000);
  };
}

/** JPEG frames into ``img``: the newest object URL shown, the one before revoked. */
export function playJpeg(id, img, { onState } = {}) {
  let url = null;
  const show = (buf) => {
    const next = URL.createObjectURL(new Blob([buf], { type: 'image/jpeg' }));
    const prev = url;
    url = next;
    img.src = next;
    if (prev) URL.revokeObjectURL(prev);
    onState?.('playing');
  };
  const close = openSocket(id, {
    onFrame: show,
    onClose: (info) => onState?.('closed', info),
  });
  return () => {
    close();
    if (url) URL.revokeObjectURL(url);
    url = null;
  };
}

/** Fragmented MP4 into ``video`` through MSE (``stream`` 'sub': the scaled sub-stream). Returns stop(). */
export function playMp4(id, video, { onState, stream = 'main' } = {}) {
  const MS = mediaSourceClass();
  if (!MS) {
    onState?.('unsupported');
    return () => {};
  }
  const ms = new MS();
  let objectUrl = null;
  if (window.ManagedMediaSource && MS === window.ManagedMediaSource) {
    video.disableRemotePlayback = true; // Safari plays a ManagedMediaSource only with this set
    video.srcObject = ms;
  } else {
    objectUrl = URL.createObjectURL(ms);
    video.src = objectUrl;
  }
  let sb = null;
  let pending = [];
  let closeSocket = null;
  let stopped = false;

  const pump = () => {
    if (stopped || !sb || sb.updating || ms.readyState !== 'open') return;
    const b = sb.buffered;
    if (b.length) {
      const end = b.end(b.length - 1);
      const lag = end - video.currentTime;
      if (lag > LIVE_LAG_S) video.currentTime = Math.max(b.start(b.length - 1), end - TARGET_LAG_S);
      video.playbackRate = lag > TARGET_LAG_S + 0.05 ? CATCH_UP_RATE : 1;
      const trimTo = video.currentTime - KEEP_BEHIND_S;
      if (b.start(0) < trimTo - 1) {
        sb.remove(0, trimTo); // updateend calls pump again
        return;
      }
    }
    const next = pending.shift();
    if (!next) return;
    try {
      sb.appendBuffer(next);
    } catch (e) {
      // QuotaExceeded or a decode error: start over with a fresh buffer and init segment.
      fail('error', { message: String(e?.message || e) });
    }
  };

  const onFrame = (buf) => {
    if (stopped) return;
    if (!sb) {
      const type = `video/mp4; codecs="${codecFromInit(buf) || DEFAULT_CODEC}"`;
      if (!MS.isTypeSupported(type)) {
        fail('unsupported', { type });
        return;
      }
      sb = ms.addSourceBuffer(type);
      sb.mode = 'segments';
      sb.addEventListener('updateend', () => {
        pump();
        if (video.paused && sb && sb.buffered.length) video.play().catch(() => {});
      });
      video.dataset.codec = type;
    }
    pending.push(buf);
    if (pending.length > MAX_PENDING) {
      fail('behind');
      return;
    }
    pump();
  };

  function fail(state, info) {
    if (stopped) return;
    stop();
    onState?.(state, info);
  }

  ms.addEventListener('sourceopen', () => {
    if (stopped) return;
    video.dataset.mse = 'open';
    closeSocket = openSocket(id, {
      stream,
      onFrame,
      onOpen: () => onState?.('connecting'),
      onClose: (info) => fail('closed', info),
    });
  }, { once: true });
  const onPlaying = () => onState?.('playing');
  video.addEventListener('playing', onPlaying);
  // A tab in the background stops drawing: back in front, catch up with the live edge.
  const onVisible = () => { if (document.visibilityState === 'visible') pump(); };
  document.addEventListener('visibilitychange', onVisible);

  function stop() {
    if (stopped) return;
    stopped = true;
    document.removeEventListener('visibilitychange', onVisible);
    video.removeEventListener('playing', onPlaying);
    closeSocket?.();
    pending = [];
    sb = null;
    try { if (ms.readyState === 'open') ms.endOfStream(); } catch { /* already ended */ }
    video.removeAttribute('src');
    video.srcObject = null;
    if (objectUrl) URL.revokeObjectURL(objectUrl);
    objectUrl = null;
  }
  return stop;
}
