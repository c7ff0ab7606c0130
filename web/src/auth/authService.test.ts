// Unit tests of the authService with a fake fetch and a fake clock/timers.
import { describe, expect, it } from 'vitest';
import { AuthService, MESSAGES, externalExpiredMessage, DEFAULT_PROVIDER, type AuthDeps } from './authService';

const user = { id: 'u1', email: 'm@x.test', name: 'M', roles: ['MANAGER'], email_verified: true };
/** The user signing in through the external identity provider (Cognito) on the same terminal. */
const externalUser = { id: 'u2', email: 'b@x.test', name: 'B', roles: ['LINE_LEADER'], email_verified: true };

interface Call {
  path: string;
  method: string;
  auth: string | null;
  body: string | undefined;
}

/** A fake server: tokens are "A1", "A2", …; the test decides which tokens the API accepts. */
function harness(opts: { refreshOk?: () => boolean; apiDelayMs?: number } = {}) {
  let clock = 1_000_000;
  let issued = 0;
  const valid = new Set<string>();
  const calls: Call[] = [];
  const timers: { at: number; fn: () => void; id: number }[] = [];
  let nextTimer = 1;
  let apiDetail = 'The access token is missing, invalid or expired.';
  let refreshGate: Promise<void> | null = null;

  const tokenBody = () => {
    issued += 1;
    const t = `A${issued}`;
    valid.add(t);
    return { access_token: t, token_type: 'Bearer', expires_in: 900, refresh_token: `R${issued}-must-not-be-kept`, user };
  };
  const json = (status: number, body: unknown) =>
    new Response(body === undefined ? null : JSON.stringify(body), {
      status,
      headers: { 'content-type': status >= 400 ? 'application/problem+json' : 'application/json' },
    });

  const fakeFetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const path = String(input);
    const headers = new Headers(init?.headers);
    calls.push({ path, method: init?.method ?? 'GET', auth: headers.get('authorization'), body: init?.body as string | undefined });
    if (path === '/auth/login') return json(200, tokenBody());
    if (path === '/auth/refresh') {
      if (refreshGate) await refreshGate;
      if (opts.refreshOk && !opts.refreshOk()) return json(401, { status: 401, code: 'invalid_refresh_token', detail: 'The session has ended; sign in again.' });
      return json(200, tokenBody());
    }
    if (path === '/auth/logout') return json(204, undefined);
    if (path === '/auth/me') {
      const t = headers.get('authorization')?.replace('Bearer ', '') ?? '';
      return valid.has(t) ? json(200, externalUser) : json(401, { status: 401, code: 'invalid_token', detail: apiDetail });
    }
    // API
    if (opts.apiDelayMs) await new Promise((r) => setTimeout(r, opts.apiDelayMs));
    const token = headers.get('authorization')?.replace('Bearer ', '') ?? '';
    if (!valid.has(token)) return json(401, { status: 401, code: 'invalid_token', detail: apiDetail });
    return json(200, { ok: true, token });
  }) as typeof fetch;

  const deps: AuthDeps = {
    fetch: fakeFetch,
    now: () => clock,
    setTimer: (fn, ms) => {
      const id = nextTimer++;
      timers.push({ at: clock + ms, fn, id });
      return id;
    },
    clearTimer: (h) => {
      const i = timers.findIndex((t) => t.id === h);
      if (i >= 0) timers.splice(i, 1);
    },
  };
  const svc = new AuthService(deps);
  return {
    svc,
    rawFetch: fakeFetch,
    calls,
    valid,
    refreshes: () => calls.filter((c) => c.path === '/auth/refresh').length,
    setApiDetail: (d: string) => (apiDetail = d),
    holdRefresh: () => {
      let release!: () => void;
      refreshGate = new Promise<void>((r) => (release = r));
      return () => {
        refreshGate = null;
        release();
      };
    },
    /** Advances the fake clock, running due timers. */
    advance: async (ms: number) => {
      clock += ms;
      for (;;) {
        const due = timers.filter((t) => t.at <= clock).sort((a, b) => a.at - b.at)[0];
        if (!due) break;
        timers.splice(timers.indexOf(due), 1);
        due.fn();
        await new Promise((r) => setTimeout(r, 0));
      }
      await new Promise((r) => setTimeout(r, 0));
    },
    timers,
  };
}

describe('authService', () => {
  it('keeps the access token in memory and never the refresh token', async () => {
    const h = harness();
    await h.svc.login('m@x.test', 'pw');
    expect(h.svc.getState()).toMatchObject({ status: 'signed_in', user: { email: 'm@x.test' } });
    // Nothing in the service's observable state carries a token.
    expect(JSON.stringify(h.svc.getState())).not.toMatch(/A1|R1|token/);
    expect(JSON.stringify(h.svc)).not.toMatch(/A1|R1/);
    const res = await h.svc.fetch('/api/thing');
    expect(await res.json()).toEqual({ ok: true, token: 'A1' });
  });

  it('refreshes shortly before the access token expires, with an empty body (cookie)', async () => {
    const h = harness();
    await h.svc.login('m@x.test', 'pw');
    expect(h.refreshes()).toBe(0);
    await h.advance(839_000); // 14 min after login: nothing yet
    expect(h.refreshes()).toBe(0);
    await h.advance(2_000); // 60 s before expiry of a 900 s token
    expect(h.refreshes()).toBe(1);
    const refresh = h.calls.find((c) => c.path === '/auth/refresh')!;
    expect(refresh.body).toBe('{}');
    expect(refresh.auth).toBeNull();
    const res = await h.svc.fetch('/api/thing');
    expect((await res.json()).token).toBe('A2');
    // and it keeps going: the next refresh is scheduled from the new token
    await h.advance(841_000);
    expect(h.refreshes()).toBe(2);
  });

  it('refreshes before a call when the token is already expired (e.g. the tablet slept)', async () => {
    const h = harness();
    await h.svc.login('m@x.test', 'pw');
    h.timers.length = 0; // the timer never fired
    await h.advance(1_000_000);
    const res = await h.svc.fetch('/api/thing');
    expect((await res.json()).token).toBe('A2');
    expect(h.refreshes()).toBe(1);
  });

  it('single-flight: concurrent 401s cause one refresh, then every call is retried once', async () => {
    const h = harness();
    await h.svc.login('m@x.test', 'pw');
    h.valid.delete('A1'); // the server stops accepting A1 (e.g. revoked key) — every call gets a 401
    const release = h.holdRefresh();
    const pending = Promise.all([h.svc.fetch('/api/a'), h.svc.fetch('/api/b'), h.svc.fetch('/api/c'), h.svc.fetch('/api/d')]);
    await new Promise((r) => setTimeout(r, 10));
    expect(h.refreshes()).toBe(1);
    release();
    const results = await pending;
    expect(h.refreshes()).toBe(1);
    for (const r of results) expect((await r.json()).token).toBe('A2');
    const apiCalls = h.calls.filter((c) => c.path.startsWith('/api/'));
    expect(apiCalls).toHaveLength(8); // four 401s, four retries
    expect(apiCalls.slice(4).every((c) => c.auth === 'Bearer A2')).toBe(true);
  });

  it('calls made while a refresh is in flight wait for it instead of using the old token', async () => {
    const h = harness();
    await h.svc.login('m@x.test', 'pw');
    const release = h.holdRefresh();
    const r = h.svc.refresh();
    const call = h.svc.fetch('/api/x');
    await new Promise((res) => setTimeout(res, 5));
    expect(h.calls.filter((c) => c.path === '/api/x')).toHaveLength(0);
    release();
    await r;
    expect((await (await call).json()).token).toBe('A2');
  });

  it('ends the session with a clear message when the refresh is refused (expired or revoked)', async () => {
    let ok = true;
    const h = harness({ refreshOk: () => ok });
    await h.svc.login('m@x.test', 'pw');
    ok = false;
    h.valid.delete('A1');
    const seen: string[] = [];
    h.svc.subscribe((s) => seen.push(s.status));
    await expect(h.svc.fetch('/api/x')).rejects.toMatchObject({ status: 401 });
    expect(h.svc.getState()).toEqual({ status: 'signed_out', user: null, message: MESSAGES.ended });
    expect(seen).toContain('signed_out');
    expect(h.svc.hasToken).toBe(false);
    // later calls fail fast without hitting the network
    const before = h.calls.length;
    await expect(h.svc.fetch('/api/y')).rejects.toMatchObject({ status: 401 });
    expect(h.calls.length).toBe(before);
  });

  it('says so when the account was disabled', async () => {
    const h = harness();
    await h.svc.login('m@x.test', 'pw');
    h.valid.delete('A1');
    h.setApiDetail('The account is no longer active.');
    await expect(h.svc.fetch('/api/x')).rejects.toMatchObject({ status: 401 });
    expect(h.svc.getState().message).toBe(MESSAGES.disabled);
  });

  it('restore() resumes a session from the cookie silently, or stays signed out without a message', async () => {
    const a = harness();
    expect(await a.svc.restore()).toBe(true);
    expect(a.svc.getState().status).toBe('signed_in');
    const b = harness({ refreshOk: () => false });
    expect(await b.svc.restore()).toBe(false);
    expect(b.svc.getState()).toEqual({ status: 'signed_out', user: null, message: null });
  });

  it('logout revokes the session on the server and forgets the token', async () => {
    const h = harness();
    await h.svc.login('m@x.test', 'pw');
    await h.svc.logout();
    const call = h.calls.find((c) => c.path === '/auth/logout')!;
    expect(call.auth).toBe('Bearer A1');
    expect(call.body).toBe('{}');
    expect(h.svc.getState().status).toBe('signed_out');
    expect(h.timers).toHaveLength(0);
    await expect(h.svc.fetch('/api/x')).rejects.toMatchObject({ status: 401 });
  });

  it('serialises refreshes across tabs through the lock when one is available', async () => {
    const h = harness();
    const names: string[] = [];
    const svc = new AuthService({
      fetch: fetchOf(h),
      now: () => Date.now(),
      setTimer: () => 0,
      clearTimer: () => undefined,
      withLock: async (name, fn) => {
        names.push(name);
        return fn();
      },
    });
    expect(await svc.refresh()).toBe(true);
    expect(names).toEqual(['ims-auth-refresh']);
  });
});

function fetchOf(h: ReturnType<typeof harness>): typeof fetch {
  return h.rawFetch;
}

describe('authService: external (OIDC) sessions and a leftover IMS refresh cookie', () => {
  const expired = externalExpiredMessage(DEFAULT_PROVIDER);

  it('acceptExternal during an in-flight restore ends with the external user, not the cookie user', async () => {
    const h = harness(); // the leftover cookie of user m@x.test is still valid
    const release = h.holdRefresh();
    const restoring = h.svc.restore(); // start-up restore with the leftover cookie, held in flight
    await new Promise((r) => setTimeout(r, 0));
    expect(h.refreshes()).toBe(1);
    h.valid.add('EXT');
    const accepting = h.svc.acceptExternal('EXT', 3600);
    await new Promise((r) => setTimeout(r, 0));
    release(); // the cookie's refresh now answers with m@x.test's tokens
    const [, who] = await Promise.all([restoring, accepting]);
    expect(who.email).toBe('b@x.test');
    expect(h.svc.getState()).toMatchObject({ status: 'signed_in', user: { email: 'b@x.test' } });
    // The API is called with the external token, not the cookie user's A1.
    const res = await h.svc.fetch('/api/thing');
    expect((await res.json()).token).toBe('EXT');
    // No refresh timer of the cookie session survives: time passing never refreshes.
    await h.advance(3_700_000);
    expect(h.refreshes()).toBe(1);
    // and the session ended at the provider token's expiry, with the message
    expect(h.svc.getState()).toEqual({ status: 'signed_out', user: null, message: expired });
  });

  it('acceptExternal revokes any IMS refresh cookie: POST /auth/logout {} without a bearer', async () => {
    const h = harness();
    h.valid.add('EXT');
    await h.svc.acceptExternal('EXT', 3600);
    const logout = h.calls.find((c) => c.path === '/auth/logout');
    expect(logout).toMatchObject({ method: 'POST', body: '{}', auth: null });
    // before the external token is used
    const order = h.calls.map((c) => c.path);
    expect(order.indexOf('/auth/logout')).toBeLessThan(order.indexOf('/auth/me'));
    expect(h.svc.getState()).toMatchObject({ status: 'signed_in', user: { email: 'b@x.test' } });
  });

  it('an external session never calls /auth/refresh: on expiry it is signed out with the message', async () => {
    const h = harness();
    h.valid.add('EXT');
    await h.svc.acceptExternal('EXT', 900);
    await h.advance(841_000); // where an IMS session would refresh
    expect(h.refreshes()).toBe(0);
    expect(h.svc.getState().status).toBe('signed_in');
    // the tab slept past the expiry: the visibility check and a call both end it, no refresh
    await h.advance(100_000);
    h.svc.checkExpiry();
    expect(h.svc.getState()).toEqual({ status: 'signed_out', user: null, message: expired });
    await expect(h.svc.fetch('/api/thing')).rejects.toMatchObject({ status: 401 });
    expect(h.refreshes()).toBe(0);
  });

  it('an external session never calls /auth/refresh: a call near expiry ends it', async () => {
    const h = harness();
    h.valid.add('EXT');
    await h.svc.acceptExternal('EXT', 900);
    // timers stalled (sleeping tablet): the clock moves past the expiry without them running
    h.timers.splice(0);
    await h.advance(901_000);
    await expect(h.svc.fetch('/api/thing')).rejects.toMatchObject({ status: 401, detail: expired });
    expect(h.svc.getState()).toEqual({ status: 'signed_out', user: null, message: expired });
    expect(h.refreshes()).toBe(0);
  });

  it('an external session never calls /auth/refresh: a 401 signs out with the message', async () => {
    const h = harness();
    h.valid.add('EXT');
    await h.svc.acceptExternal('EXT', 3600);
    h.valid.delete('EXT'); // the provider token is refused (revoked, clock skew…)
    await expect(h.svc.fetch('/api/thing')).rejects.toMatchObject({ status: 401, detail: expired });
    expect(h.svc.getState()).toEqual({ status: 'signed_out', user: null, message: expired });
    expect(h.refreshes()).toBe(0);
    // restore() is a no-op while external, and after the end a password sign-in works normally
    await h.svc.login('m@x.test', 'pw');
    await h.advance(841_000);
    expect(h.refreshes()).toBe(1);
  });

  it('a refused external token leaves the service signed out and not external', async () => {
    const h = harness();
    await expect(h.svc.acceptExternal('NOPE', 3600)).rejects.toMatchObject({ status: 401 });
    expect(h.svc.getState().status).toBe('signed_out');
    expect(h.svc.isExternal).toBe(false);
  });
});
