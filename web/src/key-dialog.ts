// The API key prompt: a modal <dialog> with a labelled password field. It hands the key back to
// api.ts and keeps nothing itself (the field is emptied as soon as it is read).
import { ApiError } from './api-error.js';

const byId = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

/** Opens the dialog with a message; resolves with the key typed, rejects when it is cancelled. */
export function askForKey(message: string): Promise<string> {
  const dialog = byId<HTMLDialogElement>('key-dialog');
  const form = byId<HTMLFormElement>('key-form');
  const input = byId<HTMLInputElement>('key-input');
  const note = byId<HTMLElement>('key-message');
  note.textContent = message;
  input.value = '';
  // A counter the tests read: the page must ask once per needed key, not once per request.
  dialog.dataset.prompts = String(Number(dialog.dataset.prompts ?? '0') + 1);
  return new Promise((resolve, reject) => {
    const done = () => {
      form.removeEventListener('submit', onSubmit);
      dialog.removeEventListener('cancel', onCancel);
      byId('key-cancel').removeEventListener('click', onCancel);
      if (dialog.open) dialog.close();
    };
    const onSubmit = (event: Event) => {
      event.preventDefault(); // form-action 'none': nothing is ever submitted
      const key = input.value.trim();
      if (!key) {
        note.textContent = 'Enter the key (it is kept in this tab only, in memory).';
        return;
      }
      input.value = '';
      done();
      resolve(key);
    };
    const onCancel = (event: Event) => {
      event.preventDefault();
      done();
      reject(new ApiError('UNAUTHORIZED', 'No API key given: the server refuses API calls without it. Reload or retry to enter it.', 401));
    };
    form.addEventListener('submit', onSubmit);
    dialog.addEventListener('cancel', onCancel);
    byId('key-cancel').addEventListener('click', onCancel);
    if (!dialog.open) dialog.showModal();
    input.focus();
  });
}
