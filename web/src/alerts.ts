// The page's error area (role="alert": read out at once) and the per-view status lines
// (aria-live="polite"). No failure is ever thrown past these: the page keeps working.
import { ApiError, isAbort } from './api-error.js';
import { byId } from './dom.js';

/** Shows an error from any view; aborted (superseded) requests are not errors. */
export function reportError(err: unknown, context: string): void {
  if (isAbort(err)) return;
  const box = byId('error');
  const message = err instanceof Error ? err.message : String(err);
  byId('error-context').textContent = context;
  byId('error-code').textContent = err instanceof ApiError ? err.code : 'ERROR';
  byId('error-message').textContent = message;
  box.dataset.code = err instanceof ApiError ? err.code : 'ERROR';
  box.hidden = false;
  if (!(err instanceof ApiError)) console.warn(context, err); // a page bug, not an API answer: keep the stack
}

export function clearError(): void {
  byId('error').hidden = true;
}

/** A view's status line and its state attribute (idle | loading | done | error), which tests wait on. */
export function setStatus(view: HTMLElement, state: 'idle' | 'loading' | 'done' | 'error', text: string): void {
  view.dataset.state = state;
  view.setAttribute('aria-busy', String(state === 'loading'));
  const line = view.querySelector<HTMLElement>('.status');
  if (line) line.textContent = text;
}

/** Disables a view's buttons while its request runs (sliders and fields stay live: they cancel). */
export function setButtonsDisabled(scope: HTMLElement, disabled: boolean): void {
  for (const b of scope.querySelectorAll<HTMLButtonElement>('button[data-busy-lock]')) b.disabled = disabled || b.dataset.unusable === 'true';
}

/** Counts the results a view has rendered (data-run): tests wait for it to move past a value. */
export function bumpRun(el: HTMLElement): void {
  el.dataset.run = String(Number(el.dataset.run ?? '0') + 1);
}
