// Typed JSON calls through the authService (bearer token, refresh, session end).
import { auth } from '../auth/session';
import { problemFrom } from './problem';

export interface Versioned<T> {
  data: T;
  /** The ETag (the object's version), for If-Match on the next write. */
  etag: string | null;
}

async function call<T>(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<Versioned<T>> {
  const res = await auth.fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) throw await problemFrom(res);
  const text = res.status === 204 ? '' : await res.text();
  return { data: (text ? JSON.parse(text) : undefined) as T, etag: res.headers.get('etag') };
}

export const api = {
  get: async <T>(path: string) => (await call<T>('GET', path)).data,
  post: async <T>(path: string, body: unknown = {}, ifMatch?: string | number) =>
    (await call<T>('POST', path, body, ifMatch === undefined ? undefined : { 'if-match': etag(ifMatch) })).data,
  /** A POST the server counts once however often it arrives under `key` (see newIdempotencyKey). */
  postOnce: async <T>(path: string, body: unknown, key: string) =>
    (await call<T>('POST', path, body, { 'idempotency-key': key })).data,
  patch: async <T>(path: string, body: unknown, ifMatch?: string | number) =>
    (await call<T>('PATCH', path, body, ifMatch === undefined ? undefined : { 'if-match': etag(ifMatch) })).data,
  put: async <T>(path: string, body: unknown, ifMatch?: string | number) =>
    (await call<T>('PUT', path, body, ifMatch === undefined ? undefined : { 'if-match': etag(ifMatch) })).data,
  del: async (path: string) => {
    await call<void>('DELETE', path);
  },
};

/**
 * A fresh Idempotency-Key: 128 random bits in hex. crypto.getRandomValues, not randomUUID, which
 * browsers only offer on HTTPS, and a factory may serve IMS over plain HTTP on its own network.
 */
export function newIdempotencyKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

function etag(v: string | number): string {
  return typeof v === 'number' ? `"${v}"` : v;
}

export function qs(params: Record<string, string | number | boolean | null | undefined>): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') u.set(k, String(v));
  const s = u.toString();
  return s ? `?${s}` : '';
}
