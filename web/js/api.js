// The REST client: the UI talks to nothing but /api/v1 (documented at /api/v1/openapi.json).

import {escaped} from './dom.js';

export class ApiError extends Error {
  constructor(status, message, parameter) {
    super(message);
    this.status = status;
    this.parameter = parameter;
  }
}

/** GET /api/v1/<path> with query parameters (arrays repeat the parameter); JSON back. */
export async function get(path, params = {}, {signal} = {}) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === '') continue;
    for (const v of Array.isArray(value) ? value : [value]) if (v !== '') query.append(key, v);
  }
  const qs = query.toString();
  const response = await fetch(`/api/v1/${path}${qs ? `?${qs}` : ''}`, {signal, headers: {accept: 'application/json'}});
  // A team server whose session cookie is missing, expired or revoked: sign in again, then
  // come back here.
  if (response.status === 401) {
    location.assign(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
    throw new ApiError(401, 'signing in again');
  }
  let body;
  try {
    body = await response.json();
  } catch {
    throw new ApiError(response.status, `the server answered ${response.status} without JSON`);
  }
  // An error can echo what was asked for (a trace id, an operation name): shown escaped.
  if (!response.ok) throw new ApiError(response.status, escaped(body.error || `HTTP ${response.status}`), body.parameter);
  return body;
}

/** Subscribes to live ingest events; returns a function that unsubscribes. */
export function onIngest(handler) {
  const source = new EventSource('/api/v1/events');
  source.addEventListener('ingest', (event) => handler(JSON.parse(event.data)));
  return () => source.close();
}

/** POST /api/v1/<path> with a JSON body; JSON back. */
export async function post(path, body = {}) {
  const response = await fetch(`/api/v1/${path}`, {method: 'POST', body: JSON.stringify(body),
    headers: {accept: 'application/json', 'content-type': 'application/json'}});
  let answer;
  try {
    answer = await response.json();
  } catch {
    throw new ApiError(response.status, `the server answered ${response.status} without JSON`);
  }
  if (!response.ok) throw new ApiError(response.status, answer.error || `HTTP ${response.status}`, answer.parameter);
  return answer;
}
