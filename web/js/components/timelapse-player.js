// A print's own timelapse (recorded by the camera component): a button on its history row that
// opens the video in a dialog, with a download link. Nothing when the print has none.
import { h } from '../dom.js';
import { t } from '../i18n.js';
import { icon } from '../icons.js';

export function timelapseButton(record) {
  const src = record?.timelapse;
  if (typeof src !== 'string' || !src.startsWith('/api/history/')) return null;
  const btn = h('button', { type: 'button', class: 'btn btn-small timelapse-btn', testid: 'history-timelapse', 'aria-label': t('history.timelapse_play') },
    icon('video'), h('span', { class: 'btn-text' }, t('history.timelapse')));
  btn.addEventListener('click', () => {
    const video = h('video', { class: 'timelapse-video', testid: 'timelapse-video', src, controls: true, autoplay: true, playsinline: true, preload: 'metadata' });
    video.muted = true;
    const close = h('button', { type: 'button', class: 'btn', testid: 'timelapse-close' }, t('history.timelapse_close'));
    const download = h('a', { class: 'btn', href: src, download: '', testid: 'timelapse-download' }, icon('download'), t('files.download'));
    const dlg = h('dialog', { class: 'dialog timelapse-dialog', testid: 'timelapse-dialog', 'aria-label': t('history.timelapse') },
      video, h('div', { class: 'dialog-actions' }, download, close));
    const done = () => { video.pause(); video.removeAttribute('src'); dlg.remove(); };
    close.addEventListener('click', () => dlg.close());
    dlg.addEventListener('close', done);
    document.body.appendChild(dlg);
    dlg.showModal();
  });
  return btn;
}
