// A plate picture from the API (history record, queue file), or a neutral placeholder when there
// is none or it cannot be loaded. Lazy: a long history page loads only the pictures it shows.
import { h } from '../dom.js';
import { icon } from '../icons.js';

export function thumb(src, { alt = '', cls = '', testid = 'thumb' } = {}) {
  const box = h('span', { class: ['thumb', cls], testid });
  const placeholder = () => {
    box.replaceChildren(icon('cube', 'icon thumb-icon'));
    box.classList.add('is-empty');
  };
  if (typeof src !== 'string' || !src.startsWith('/api/')) {
    placeholder();
    return box;
  }
  const img = h('img', { src, alt, loading: 'lazy', decoding: 'async', width: '96', height: '96' });
  img.addEventListener('error', placeholder, { once: true });
  box.appendChild(img);
  return box;
}
