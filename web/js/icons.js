// A handful of inline SVG icons (24x24, stroke = currentColor). Decorative: aria-hidden.
import { s } from './dom.js';

const P = {
  pause: ['M7 5h3v14H7zM14 5h3v14h-3z', true],
  play: ['M7 4.5v15l12.5-7.5z', true],
  stop: ['M6 6h12v12H6z', true],
  bulb: ['M9 18h6M10 21h4M12 3a6 6 0 0 0-4 10.5c.8.8 1 1.5 1 2.5h6c0-1 .2-1.7 1-2.5A6 6 0 0 0 12 3z'],
  sun: ['M12 8a4 4 0 1 0 0 8 4 4 0 0 0 0-8zM12 2v2M12 20v2M4.9 4.9l1.4 1.4M17.7 17.7l1.4 1.4M2 12h2M20 12h2M4.9 19.1l1.4-1.4M17.7 6.3l1.4-1.4'],
  moon: ['M21 12.8A9 9 0 1 1 11.2 3a7 7 0 0 0 9.8 9.8z'],
  logout: ['M9 21H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2h4M16 17l5-5-5-5M21 12H9'],
  settings: ['M4 21v-7M4 10V3M12 21v-9M12 8V3M20 21v-5M20 12V3M1 14h6M9 8h6M17 16h6'],
  grid: ['M3 3h7v7H3zM14 3h7v7h-7zM14 14h7v7h-7zM3 14h7v7H3z'],
  copy: ['M9 9h11v11H9zM5 15H4a1 1 0 0 1-1-1V4a1 1 0 0 1 1-1h10a1 1 0 0 1 1 1v1'],
  check: ['M20 6L9 17l-5-5'],
  x: ['M18 6L6 18M6 6l12 12'],
  alert: ['M12 9v4M12 17h.01M10.3 3.9L1.8 18a2 2 0 0 0 1.7 3h17a2 2 0 0 0 1.7-3L13.7 3.9a2 2 0 0 0-3.4 0z'],
  info: ['M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20zM12 16v-4M12 8h.01'],
  offline: ['M1 1l22 22M16.7 11.1A11 11 0 0 1 19 12.6M5 12.6a11 11 0 0 1 5.2-2.5M10.7 5.1A16 16 0 0 1 22.6 9M1.4 9a16 16 0 0 1 4.4-2.8M8.5 16.1a6 6 0 0 1 7 0M12 20h.01'],
  speed: ['M12 14l4-4M3.3 19a10 10 0 1 1 17.4 0'],
  back: ['M19 12H5M12 19l-7-7 7-7'],
  terminal: ['M4 17l6-6-6-6M12 19h8'],
  key: ['M15.5 7.5l3 3L22 7l-3-3M21 2l-9.6 9.6M7.5 11a5.5 5.5 0 1 0 0 11 5.5 5.5 0 0 0 0-11z'],
  users: ['M17 21v-2a4 4 0 0 0-4-4H5a4 4 0 0 0-4 4v2M9 11a4 4 0 1 0 0-8 4 4 0 0 0 0 8zM23 21v-2a4 4 0 0 0-3-3.9M16 3.1a4 4 0 0 1 0 7.8'],
  lock: ['M5 11h14v10H5zM8 11V7a4 4 0 0 1 8 0v4'],
  plus: ['M12 5v14M5 12h14'],
  trash: ['M3 6h18M8 6V4h8v2M19 6l-1 14H6L5 6'],
  globe: ['M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20zM2 12h20M12 2a15 15 0 0 1 0 20M12 2a15 15 0 0 0 0 20'],
  refresh: ['M23 4v6h-6M1 20v-6h6M3.5 9a9 9 0 0 1 14.8-3.4L23 10M1 14l4.7 4.4A9 9 0 0 0 20.5 15'],
  shield: ['M12 22s8-4 8-10V5l-8-3-8 3v7c0 6 8 10 8 10z'],
  printer: ['M4 3h16v18H4zM4 15h16M8 19h.01M9 7h6v5H9z'],
  layers: ['M12 2l10 5-10 5L2 7zM2 17l10 5 10-5M2 12l10 5 10-5'],
  clock: ['M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20zM12 6v6l4 2'],
  drop: ['M12 2.7l5.7 5.7a8 8 0 1 1-11.3 0z'],
  cube: ['M12 2l9 5v10l-9 5-9-5V7zM3 7l9 5 9-5M12 12v10'],
  history: ['M3 12a9 9 0 1 0 3-6.7L3 8M3 3v5h5M12 7v5l3 3'],
  queue: ['M8 6h13M8 12h13M8 18h13M3 6h.01M3 12h.01M3 18h.01'],
  folder: ['M3 6a2 2 0 0 1 2-2h4l2 3h8a2 2 0 0 1 2 2v9a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2z'],
  file: ['M14 3H6a1 1 0 0 0-1 1v16a1 1 0 0 0 1 1h12a1 1 0 0 0 1-1V8zM14 3v5h5'],
  download: ['M12 3v12M7 10l5 5 5-5M4 21h16'],
  upload: ['M12 21V9M7 14l5-5 5 5M4 3h16'],
  up: ['M12 19V5M5 12l7-7 7 7'],
  down: ['M12 5v14M19 12l-7 7-7-7'],
  video: ['M3 6h12v12H3zM15 10l6-4v12l-6-4'],
  bed: ['M2 15h20v3H2zM5 18v3M19 18v3M9 6h6v6H9z'],
  expand: ['M15 3h6v6M9 21H3v-6M21 3l-7 7M3 21l7-7'],
};

export function icon(name, cls = 'icon') {
  const [d, filled] = P[name] || P.info;
  return s('svg', { class: cls, viewBox: '0 0 24 24', 'aria-hidden': 'true', focusable: 'false' },
    s('path', { d, fill: filled ? 'currentColor' : 'none', stroke: filled ? 'none' : 'currentColor', 'stroke-width': 2, 'stroke-linecap': 'round', 'stroke-linejoin': 'round' }));
}
