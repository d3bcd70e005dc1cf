// Every call to the service goes through apiCall: same origin only, the API key (when the server
// asks for one) in the Authorization header, errors turned into ApiError with the server's message,
// and stale requests cancelled per channel so that the latest answer is the one shown.
import { ApiError } from './api-error.js';
import { askForKey } from './key-dialog.js';

/**
 * The API key lives in this variable and nowhere else: never localStorage, sessionStorage,
 * cookies, IndexedDB or the URL, so closing the tab forgets it.
 */
let apiKey = '';
/** Bumped on every new key, so that calls refused with an older key retry without asking again. */
let keyVersion = 0;
/** One prompt at a time: every call refused while it is open waits for the same answer. */
let pendingPrompt: Promise<void> | null = null;

interface CallOptions {
  json?: unknown;
  form?: FormData;
  signal?: AbortSignal;
}

async function errorOf(res: Response): Promise<ApiError> {
  try {
    const body = await res.json();
    if (body && body.error && typeof body.error.message === 'string') return new ApiError(String(body.error.code ?? 'ERROR'), body.error.message, res.status);
  } catch {
    // not JSON: fall through to the status line
  }
  return new ApiError('HTTP_' + res.status, `${res.status} ${res.statusText || 'error'}`.trim(), res.status);
}

function promptOnce(message: string): Promise<void> {
  if (!pendingPrompt) {
    pendingPrompt = askForKey(message)
      .then((key) => {
        apiKey = key;
        keyVersion++;
      })
      .finally(() => {
        pendingPrompt = null;
      });
  }
  return pendingPrompt;
}

/** GET (no body) or POST (json or form) to a same-origin path; resolves with the parsed JSON. */
export async function apiCall<T>(path: string, opts: CallOptions = {}): Promise<T> {
  for (;;) {
    const sentWith = keyVersion;
    const headers: Record<string, string> = { accept: 'application/json' };
    if (apiKey) headers.authorization = `Bearer ${apiKey}`;
    let body: BodyInit | undefined;
    if (opts.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(opts.json);
    } else if (opts.form) body = opts.form; // the browser writes the multipart boundary
    const res = await fetch(path, { method: body === undefined ? 'GET' : 'POST', headers, body, signal: opts.signal, credentials: 'omit', cache: 'no-store' });
    if (res.ok) return (await res.json()) as T;
    const err = await errorOf(res);
    if (res.status !== 401 || err.code !== 'UNAUTHORIZED') throw err;
    // Another call may have got a new key while this one was on the wire: just retry with it.
    if (sentWith === keyVersion) {
      const message = sentWith === 0 ? 'This server needs an API key.' : `The server refused this key (${err.message}). Enter it again.`;
      await promptOnce(message);
    }
    opts.signal?.throwIfAborted();
  }
}

const channels = new Map<string, AbortController>();

/** A fresh signal for a channel, aborting the channel's previous request: the latest call wins. */
export function freshSignal(channel: string): AbortSignal {
  channels.get(channel)?.abort();
  const controller = new AbortController();
  channels.set(channel, controller);
  return controller.signal;
}

/** Cancels every channel's request (the model changed: none of their answers apply any more). */
export function abortAll(): void {
  for (const c of channels.values()) c.abort();
  channels.clear();
}
