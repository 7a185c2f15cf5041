// The link state of one printer as a badge (Online / Offline / Connecting / Access code rejected /
// Certificate changed), kept live from the store. Used on cards, the printer page and printer lists.
import { h, setText } from '../dom.js';
import { linkLabel, linkTone } from '../format.js';
import { store } from '../store.js';

/** A badge bound to printer `id`; its store subscription is added to scope `sc`. */
export function createLinkBadge(id, sc) {
  const el = h('span', { class: 'badge', testid: 'link-state' });
  sc.add(store.watch(id, ['link.state'], (p) => {
    const st = p.link?.state ?? null;
    setText(el, linkLabel(st));
    el.className = `badge tone-${linkTone(st)}`;
    el.dataset.state = st || '';
  }));
  return el;
}
