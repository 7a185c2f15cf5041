// A Klipper printer's nozzle and loaded filament (GET/PUT /api/printers/{id}/materials): Klipper
// reports neither, so the user says what is on the printer and the queue sends it matching jobs.
// Shown on the printer page of a type "moonraker" printer; the card's spool follows over the
// WebSocket once saved.
import { ApiError, enc, get, put } from '../api.js';
import { field, h } from '../dom.js';
import { t } from '../i18n.js';
import { errorText, toast } from '../toast.js';

const NOZZLES = [0.2, 0.25, 0.4, 0.5, 0.6, 0.8, 1.0];
const FILAMENTS = ['PLA', 'PETG', 'ABS', 'ASA', 'TPU', 'PA', 'PC', 'PVA'];

export function createKlipperMaterials(id) {
  const nozzle = h('select', { name: 'nozzle_diameter' },
    h('option', { value: '' }, t('materials.not_set')),
    NOZZLES.map((n) => h('option', { value: String(n) }, `${n} mm`)));
  const listId = `filaments-${id}`;
  const ftype = h('input', { name: 'filament_type', autocomplete: 'off', spellcheck: 'false', autocapitalize: 'characters', maxlength: '32', list: listId, placeholder: 'PLA' });
  const colour = h('input', { name: 'filament_color', type: 'color', value: '#ffffff' });
  const noColour = h('input', { type: 'checkbox', name: 'no_color', checked: true });
  colour.addEventListener('input', () => { noColour.checked = false; });
  const error = h('p', { class: 'form-error', role: 'alert', testid: 'materials-error', hidden: true });
  const save = h('button', { type: 'submit', class: 'btn btn-primary', testid: 'materials-save' }, t('common.save'));
  const form = h('form', { class: 'form', testid: 'materials-form', novalidate: true },
    h('p', { class: 'field-hint' }, t('materials.hint')),
    h('div', { class: 'form-grid' },
      field({ label: t('materials.nozzle'), input: nozzle, testid: 'materials-nozzle' }),
      field({ label: t('materials.filament'), input: ftype, testid: 'materials-filament' }),
      field({ label: t('materials.colour'), input: colour, testid: 'materials-colour' }),
      h('label', { class: 'check' }, noColour, t('materials.no_colour'))),
    h('datalist', { id: listId }, FILAMENTS.map((f) => h('option', { value: f }))),
    error, h('div', { class: 'form-actions' }, save));
  noColour.dataset.testid = 'materials-no-colour';

  function fill(m) {
    const n = typeof m?.nozzle_diameter === 'number' ? m.nozzle_diameter : null;
    if (n !== null && !NOZZLES.includes(n)) nozzle.append(h('option', { value: String(n) }, `${n} mm`));
    nozzle.value = n === null ? '' : String(n);
    ftype.value = typeof m?.filament_type === 'string' ? m.filament_type : '';
    const c = typeof m?.filament_color === 'string' && /^#[0-9A-Fa-f]{6}/.test(m.filament_color) ? m.filament_color.slice(0, 7) : null;
    colour.value = (c || '#ffffff').toLowerCase();
    noColour.checked = c === null;
  }

  get(`/api/printers/${enc(id)}/materials`).then(fill).catch((e) => {
    if (!(e instanceof ApiError && e.status === 401)) toast(errorText(e), { kind: 'error', title: t('materials.title') });
  });

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.hidden = true;
    save.disabled = true;
    try {
      const body = {
        nozzle_diameter: nozzle.value ? Number(nozzle.value) : null,
        filament_type: ftype.value.trim() || null,
        filament_color: noColour.checked ? null : colour.value,
      };
      fill(await put(`/api/printers/${enc(id)}/materials`, body));
      toast(t('materials.saved'), { kind: 'success' });
    } catch (err) {
      error.textContent = errorText(err);
      error.hidden = false;
    } finally {
      save.disabled = false;
    }
  });
  return { el: form };
}
