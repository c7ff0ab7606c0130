// The authService: the only code that touches credentials.
//
// - The access token lives in a private field of this object (memory only). It is never written
//   to localStorage, sessionStorage, IndexedDB, a cookie or the URL.
// - The refresh token lives only in the server's HttpOnly, SameSite=Strict cookie scoped to
//   /auth: scripts cannot read it. The `refresh_token` field of login/refresh responses is
//   dropped on arrival. Refresh sends `{}` and the browser attaches the cookie (same origin) and
//   the Origin header the server checks.
// - It refreshes a little before the access token expires (a timer, re-checked when the tab
//   becomes visible again), and on a 401 from the API. Refreshes are single-flight: concurrent
//   calls that need a new token wait for the one refresh in progress, then retry once. Across
//   tabs, refreshes are serialised with the Web Locks API, because the server rotates refresh
//   tokens and treats a rotated token presented again as theft (it revokes the session).
// - When the session cannot be renewed (expired, revoked, account disabled) it signs out locally
//   and publishes a message for the login page.

import { ApiError, NetworkError, problemFrom } from '../api/problem';
import type { User } from '../api/types';

export type AuthStatus = 'unknown' | 'signed_in' | 'signed_out';

export interface AuthState {
  status: AuthStatus;
  user: User | null;
  /** Why the user is on the login page, when it was not their own choice. */
  message: string | null;
}

export interface AuthDeps {
  fetch: typeof fetch;
  now: () => number;
  setTimer: (fn: () => void, ms: number) => unknown;
  clearTimer: (handle: unknown) => void;
  /** Cross-tab mutual exclusion for refreshes (navigator.locks), when available. */
  withLock?: <T>(name: string, fn: () => Promise<T>) => Promise<T>;
  /** Cross-tab sign-out notices (BroadcastChannel), when available. */
  channel?: { postMessage(m: unknown): void; onmessage: ((e: { data: unknown }) => void) | null };
}

export const MESSAGES = {
  ended: 'Your session has ended: it expired, or it was signed out elsewhere or by an administrator. Please sign in again.',
  disabled: 'Your account is no longer active. Ask an administrator if you think this is a mistake.',
  elsewhere: 'You signed out in another tab.',
  passwordChanged: 'Your password was changed. Sign in with the new password.',
} as const;

/** The message when an external (OIDC) sign-in ends: it cannot be renewed through IMS. */
export function externalExpiredMessage(provider: string): string {
  return `Your sign-in with ${provider} has expired; sign in again.`;
}

export const DEFAULT_PROVIDER = 'your company account';

/** Refresh this long before expiry (capped at a quarter of the token's lifetime). */
const REFRESH_MARGIN_MS = 60_000;

interface TokenBody {
  access_token: string;
  expires_in: number;
  user: User;
}

type Listener = (s: AuthState) => void;

export class AuthService {
  #token: string | null = null;
  #expiresAt = 0;
  #refreshing: Promise<boolean> | null = null;
  #timer: unknown = null;
  /**
   * Set (to the provider's name) while the session is an external (OIDC) one. Such a session is
   * never renewed through /auth/refresh: an IMS refresh cookie left in the browser by someone
   * else must not replace the external user's session. On expiry or a 401 it simply ends.
   */
  #external: string | null = null;
  #state: AuthState = { status: 'unknown', user: null, message: null };
  #listeners = new Set<Listener>();
  #deps: AuthDeps;

  constructor(deps: AuthDeps) {
    this.#deps = deps;
    if (deps.channel) {
      deps.channel.onmessage = (e) => {
        if ((e.data as { type?: string })?.type === 'signed_out' && this.#state.status === 'signed_in') {
          this.#end(MESSAGES.elsewhere);
        }
      };
    }
  }

  // ---- state for the UI ---------------------------------------------------------------------

  getState = (): AuthState => this.#state;

  subscribe = (fn: Listener): (() => void) => {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  };

  #set(next: AuthState) {
    this.#state = next;
    for (const l of this.#listeners) l(next);
  }

  /** Whether a (possibly expired) access token is held. Never exposes the token itself. */
  get hasToken(): boolean {
    return this.#token !== null;
  }

  clearMessage() {
    if (this.#state.message) this.#set({ ...this.#state, message: null });
  }

  // ---- sign-in and sign-out -----------------------------------------------------------------

  async login(email: string, password: string): Promise<User> {
    const res = await this.#raw('/auth/login', { method: 'POST', body: JSON.stringify({ email, password }) });
    if (!res.ok) throw await problemFrom(res);
    this.#external = null;
    return this.#accept((await res.json()) as TokenBody);
  }

  /** At start-up: resume a session from the refresh cookie, if there is one. Silent on failure. */
  async restore(): Promise<boolean> {
    if (this.#external) return this.#state.status === 'signed_in';
    const ok = await this.refresh(true).catch(() => false);
    if (!ok && this.#state.status === 'unknown') this.#set({ status: 'signed_out', user: null, message: null });
    return ok;
  }

  async logout(): Promise<void> {
    const token = this.#token;
    try {
      const headers: Record<string, string> = {};
      if (token) headers.authorization = `Bearer ${token}`;
      await this.#raw('/auth/logout', { method: 'POST', body: '{}', headers });
    } catch {
      // Signed out locally whatever the network says; the cookie dies with its session.
    }
    this.#deps.channel?.postMessage({ type: 'signed_out' });
    this.#end(null);
  }

  /**
   * Accepts an access token from the external identity provider (OIDC, PKCE flow). It cannot be
   * refreshed through IMS: when it expires the user signs in again through the provider.
   */
  async acceptExternal(accessToken: string, expiresIn: number, provider: string = DEFAULT_PROVIDER): Promise<User> {
    // From here on no refresh result may be accepted (see #doRefresh), and no new refresh starts.
    this.#external = provider;
    // A refresh already under way (a start-up restore with a leftover IMS cookie) must finish
    // before the external session is set up, and its result is discarded.
    if (this.#refreshing) await this.#refreshing.catch(() => false);
    this.#clearTimer();
    this.#token = null;
    this.#expiresAt = 0;
    // Revoke any IMS refresh cookie in this browser (another user's session on a shared
    // terminal): no bearer, so the server ends only the cookie's session. Best effort.
    try {
      await this.#raw('/auth/logout', { method: 'POST', body: '{}' });
    } catch {
      // Offline: nothing more to do; the external session never uses the cookie anyway.
    }
    const res = await this.#raw('/auth/me', { headers: { authorization: `Bearer ${accessToken}` } });
    if (!res.ok) {
      this.#external = null;
      const problem = await problemFrom(res);
      this.#end(null);
      throw problem;
    }
    const user = (await res.json()) as User;
    if (this.#external !== provider) throw new ApiError(401, { code: 'session_ended', detail: MESSAGES.ended }, null);
    this.#token = accessToken;
    this.#expiresAt = this.#deps.now() + expiresIn * 1000;
    // Not refreshed: when the provider's token expires, the session ends.
    this.#timer = this.#deps.setTimer(() => {
      this.#timer = null;
      if (this.#external) this.#end(externalExpiredMessage(this.#external));
    }, Math.max(0, this.#expiresAt - this.#deps.now()));
    this.#set({ status: 'signed_in', user, message: null });
    return user;
  }

  /** Whether the current session came from the external identity provider. */
  get isExternal(): boolean {
    return this.#external !== null;
  }

  #endExternal() {
    this.#end(externalExpiredMessage(this.#external ?? DEFAULT_PROVIDER));
  }

  // ---- refresh ------------------------------------------------------------------------------

  /**
   * Gets a new access token with the refresh cookie. Single-flight: callers arriving while a
   * refresh is under way share its result. Resolves false when the session has ended.
   */
  refresh(silent = false): Promise<boolean> {
    if (this.#external) {
      // An external session is never renewed with the IMS refresh cookie.
      if (this.#state.status === 'signed_in') this.#endExternal();
      return Promise.resolve(false);
    }
    if (!this.#refreshing) {
      this.#refreshing = this.#doRefresh(silent).finally(() => {
        this.#refreshing = null;
      });
    }
    return this.#refreshing;
  }

  async #doRefresh(silent: boolean): Promise<boolean> {
    const run = async () => {
      if (this.#external) return false;
      const res = await this.#raw('/auth/refresh', { method: 'POST', body: '{}' });
      // An external sign-in happened meanwhile: the cookie's session must not take it over.
      if (this.#external) return false;
      if (res.ok) {
        this.#accept((await res.json()) as TokenBody);
        return true;
      }
      if (res.status === 401 || res.status === 403) {
        if (silent) {
          this.#token = null;
        } else {
          this.#end(MESSAGES.ended);
        }
        return false;
      }
      throw await problemFrom(res);
    };
    return this.#deps.withLock ? this.#deps.withLock('ims-auth-refresh', run) : run();
  }

  #accept(body: TokenBody): User {
    // body.refresh_token is deliberately ignored: the HttpOnly cookie is the refresh credential.
    this.#token = body.access_token;
    this.#expiresAt = this.#deps.now() + body.expires_in * 1000;
    this.#schedule(body.expires_in * 1000);
    this.#set({ status: 'signed_in', user: body.user, message: null });
    return body.user;
  }

  #clearTimer() {
    if (this.#timer !== null) this.#deps.clearTimer(this.#timer);
    this.#timer = null;
  }

  #schedule(lifetimeMs: number) {
    this.#clearTimer();
    const margin = Math.min(REFRESH_MARGIN_MS, lifetimeMs / 4);
    const delay = Math.max(1000, this.#expiresAt - margin - this.#deps.now());
    this.#timer = this.#deps.setTimer(() => {
      this.#timer = null;
      if (this.#token) void this.refresh().catch(() => undefined);
    }, delay);
  }

  /** Called when the page becomes visible again: timers may not have run while it slept. */
  checkExpiry() {
    if (this.#external) {
      if (this.#token && this.#deps.now() >= this.#expiresAt) this.#endExternal();
      return;
    }
    if (this.#token && this.#deps.now() >= this.#expiresAt - REFRESH_MARGIN_MS) {
      void this.refresh().catch(() => undefined);
    }
  }

  #end(message: string | null) {
    this.#token = null;
    this.#expiresAt = 0;
    this.#external = null;
    this.#clearTimer();
    this.#set({ status: 'signed_out', user: null, message });
  }

  /** Ends the session locally with a message (e.g. after a password change or reset). */
  endSession(message: string | null) {
    this.#end(message);
  }

  // ---- authenticated requests ---------------------------------------------------------------

  /**
   * fetch() with the bearer token. Refreshes first when the token is (nearly) expired, and once
   * more on a 401. When the session cannot be renewed it throws ApiError(401) and the UI returns
   * to the login page with a message.
   */
  async fetch(path: string, init: RequestInit = {}): Promise<Response> {
    if (this.#refreshing) await this.#refreshing.catch(() => false);
    const external = this.#external;
    if (external) {
      if (this.#token && this.#deps.now() >= this.#expiresAt) this.#endExternal();
    } else if (this.#token && this.#deps.now() >= this.#expiresAt - 5000) {
      await this.refresh();
    }
    const token = this.#token;
    if (!token) throw new ApiError(401, { code: 'session_ended', detail: this.#state.message ?? MESSAGES.ended }, null);
    const first = await this.#raw(path, withBearer(init, token));
    if (first.status !== 401) return first;

    const problem = await problemFrom(first.clone());
    if (/no longer active/i.test(problem.detail)) {
      this.#end(MESSAGES.disabled);
      throw problem;
    }
    if (external) {
      // The provider's token was refused: the external session ends (no IMS refresh).
      const message = externalExpiredMessage(external);
      if (this.#token === token) this.#end(message);
      throw new ApiError(401, { code: 'session_ended', detail: message }, null);
    }
    // Another call may already have replaced the token; otherwise refresh (single-flight).
    if (this.#token === token) {
      const ok = await this.refresh();
      if (!ok) throw new ApiError(401, { code: 'session_ended', detail: MESSAGES.ended }, null);
    }
    const again = this.#token;
    if (!again) throw new ApiError(401, { code: 'session_ended', detail: MESSAGES.ended }, null);
    const second = await this.#raw(path, withBearer(init, again));
    if (second.status === 401) {
      const p = await problemFrom(second.clone());
      this.#end(/no longer active/i.test(p.detail) ? MESSAGES.disabled : MESSAGES.ended);
    }
    return second;
  }

  async #raw(path: string, init: RequestInit): Promise<Response> {
    const headers = new Headers(init.headers);
    if (init.body !== undefined && typeof init.body === 'string' && !headers.has('content-type')) {
      headers.set('content-type', 'application/json');
    }
    headers.set('accept', headers.get('accept') ?? 'application/json');
    try {
      return await this.#deps.fetch(path, { ...init, headers, credentials: 'same-origin', cache: 'no-store' });
    } catch {
      throw new NetworkError();
    }
  }

  // ---- one-time-code journeys (no session needed) -------------------------------------------

  async #post(path: string, body: unknown): Promise<Response> {
    const res = await this.#raw(path, { method: 'POST', body: JSON.stringify(body) });
    if (!res.ok) throw await problemFrom(res);
    return res;
  }

  async forgotPassword(email: string): Promise<void> {
    await this.#post('/auth/forgot-password', { email });
  }

  async sendVerification(email: string): Promise<void> {
    await this.#post('/auth/send-verification', { email });
  }

  /** Exchanges a password-reset code for a short-lived reset token (kept by the caller in memory). */
  async verifyResetCode(email: string, otp: string): Promise<string> {
    const res = await this.#post('/auth/verify-otp', { email, otp, purpose: 'password_reset' });
    return ((await res.json()) as { reset_token: string }).reset_token;
  }

  async verifyEmail(email: string, otp: string): Promise<void> {
    await this.#post('/auth/verify-otp', { email, otp, purpose: 'email_verification' });
  }

  async resetPassword(resetToken: string, newPassword: string): Promise<void> {
    await this.#post('/auth/reset-password', { reset_token: resetToken, new_password: newPassword });
  }

  async changePassword(current: string, next: string): Promise<void> {
    const res = await this.fetch('/auth/change-password', {
      method: 'POST',
      body: JSON.stringify({ current_password: current, new_password: next }),
    });
    if (!res.ok) throw await problemFrom(res);
  }
}

function withBearer(init: RequestInit, token: string): RequestInit {
  const headers = new Headers(init.headers);
  headers.set('authorization', `Bearer ${token}`);
  return { ...init, headers };
}

/** The app's one instance, wired to the browser. */
export function browserAuthService(): AuthService {
  const locks = (navigator as Navigator & { locks?: LockManager }).locks;
  const channel = typeof BroadcastChannel !== 'undefined' ? new BroadcastChannel('ims-auth') : undefined;
  const service = new AuthService({
    fetch: window.fetch.bind(window),
    now: () => Date.now(),
    setTimer: (fn, ms) => window.setTimeout(fn, ms),
    clearTimer: (h) => window.clearTimeout(h as number),
    withLock: locks
      ? async <T,>(name: string, fn: () => Promise<T>): Promise<T> => {
          let out: T | undefined;
          await locks.request(name, async () => {
            out = await fn();
          });
          return out as T;
        }
      : undefined,
    channel: channel as unknown as AuthDeps['channel'],
  });
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') service.checkExpiry();
  });
  return service;
}
