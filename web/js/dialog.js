// A modal confirm dialog on <dialog>: focus is trapped by the browser, Esc cancels.
import { h } from './dom.js';
import { t } from './i18n.js';

/** confirmDialog({title, body, ok, danger}) -> Promise<boolean> */
export function confirmDialog({ title, body, ok = null, cancel = null, danger = false }) {
  return new Promise((resolve) => {
    const titleId = 'confirm-title';
    const bodyId = 'confirm-body';
    const okBtn = h('button', { type: 'button', class: danger ? 'btn btn-danger' : 'btn btn-primary', testid: 'confirm-ok' }, ok || t('common.ok'));
    const cancelBtn = h('button', { type: 'button', class: 'btn', testid: 'confirm-cancel' }, cancel || t('common.cancel'));
    const dlg = h('dialog', { class: 'dialog', testid: 'confirm-dialog', 'aria-labelledby': titleId, 'aria-describedby': bodyId },
      h('h2', { id: titleId, class: 'dialog-title' }, title),
      h('div', { id: bodyId, class: 'dialog-body' }, body),
      h('div', { class: 'dialog-actions' }, cancelBtn, okBtn));
    let answered = false;
    const finish = (v) => {
      if (answered) return;
      answered = true;
      if (dlg.open) dlg.close();
      dlg.remove();
      resolve(v);
    };
    okBtn.addEventListener('click', () => finish(true));
    cancelBtn.addEventListener('click', () => finish(false));
    dlg.addEventListener('cancel', (e) => { e.preventDefault(); finish(false); });
    dlg.addEventListener('close', () => finish(false));
    document.body.appendChild(dlg);
    dlg.showModal();
    (danger ? cancelBtn : okBtn).focus(); // a destructive answer is never the default
  });
}
