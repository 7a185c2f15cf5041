// The options of a print on a Bambu printer (bed levelling, AMS, timelapse, calibrations), as
// checkboxes starting from Bambu Studio's defaults. Used by the queue's "Add a print" and by
// "Print" on a file already on the printer.
import { h } from '../dom.js';
import { t } from '../i18n.js';

const DEFAULTS = { bed_leveling: true, use_ams: true, timelapse: false, flow_cali: true, vibration_cali: true, layer_inspect: true };
const KEYS = Object.keys(DEFAULTS);

/** printOptions(testPrefix) -> {labels: [<label> with its checkbox], value() -> {key: bool}} */
export function printOptions(testPrefix) {
  const inputs = KEYS.map((k) => h('input', { type: 'checkbox', name: k, checked: DEFAULTS[k], testid: `${testPrefix}-${k}` }));
  return {
    labels: KEYS.map((k, i) => h('label', { class: 'check' }, inputs[i], h('span', {}, t(`opt.${k}`)))),
    value: () => Object.fromEntries(KEYS.map((k, i) => [k, inputs[i].checked])),
  };
}
