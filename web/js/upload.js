// Uploads with progress. fetch() cannot report how much of a request body has been sent;
// XMLHttpRequest can (xhr.upload 'progress'). Same rules as api.js: same-origin cookie, CSRF
// header, errors as ApiError with the server's plain message, a 401 means the session is over.
import { ApiError, csrf, refreshCsrf } from './api.js';
import { emit } from './bus.js';

function parse(xhr) {
  const text = xhr.responseText || '';
  if (!text) return null;
  try { return JSON.parse(text); } catch { return { message: text.slice(0, 300) }; }
}

function send(method, url, body, onProgress) {
  const xhr = new XMLHttpRequest();
  const promise = new Promise((resolve, reject) => {
    xhr.open(method, url);
    xhr.setRequestHeader('Accept', 'application/json');
    // A FormData body sets its own multipart type (with the boundary).
    if (!(body instanceof FormData)) xhr.setRequestHeader('Content-Type', 'application/octet-stream');
    const token = csrf();
    if (token) xhr.setRequestHeader('X-CSRF-Token', token);
    xhr.upload.addEventListener('progress', (e) => {
      if (onProgress) onProgress(e.loaded, e.lengthComputable ? e.total : null);
    });
    xhr.addEventListener('load', () => {
      const data = parse(xhr);
      if (xhr.status >= 200 && xhr.status < 300) { resolve({ status: xhr.status, data }); return; }
      const code = (data && typeof data.error === 'string' && data.error) || `http_${xhr.status}`;
      const message = data && typeof data.message === 'string' ? data.message : null;
      reject(new ApiError(xhr.status, code, message, data, Number(xhr.getResponseHeader('Retry-After')) || null));
    });
    xhr.addEventListener('error', () => reject(new ApiError(0, 'network', null)));
    xhr.addEventListener('abort', () => reject(new ApiError(0, 'aborted', null)));
    xhr.send(body);
  });
  return { xhr, promise };
}

/**
 * upload('PUT', '/api/printers/x/files?path=...', file, {onProgress(sent, total)})
 *   -> {promise: Promise<{status, data}>, abort()}
 * A stale CSRF token is refreshed once and the file sent again (a File can be read twice).
 */
export function upload(method, url, body, { onProgress } = {}) {
  let current = send(method, url, body, onProgress);
  let aborted = false;
  const promise = current.promise.catch(async (e) => {
    if (!aborted && e instanceof ApiError && e.status === 403 && e.code === 'csrf') {
      const fresh = await refreshCsrf();
      if (fresh && !aborted) {
        current = send(method, url, body, onProgress);
        return current.promise;
      }
    }
    throw e;
  }).catch((e) => {
    if (e instanceof ApiError && e.status === 401) emit('auth:lost', { path: url });
    throw e;
  });
  return { promise, abort() { aborted = true; current.xhr.abort(); } };
}
