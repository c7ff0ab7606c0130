// Unit tests of the OIDC callback checks: the state is validated before anything else, a
// crafted URL cannot consume this tab's pending sign-in, and nothing from the URL is shown.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { finishExternalSignIn, OIDC_MESSAGES } from './oidc';

const KEY = 'ims.oidc.pending';
const pending = { verifier: 'v'.repeat(64), state: 'good-state-123', token_endpoint: 'https://idp.test/oauth2/token', client_id: 'cid' };

let store: Map<string, string>;
let fetchMock: ReturnType<typeof vi.fn>;

beforeEach(() => {
  store = new Map([[KEY, JSON.stringify(pending)]]);
  vi.stubGlobal('sessionStorage', {
    getItem: (k: string) => store.get(k) ?? null,
    setItem: (k: string, v: string) => void store.set(k, v),
    removeItem: (k: string) => void store.delete(k),
  });
  vi.stubGlobal('location', { origin: 'https://ims.test' });
  fetchMock = vi.fn(async () => new Response(JSON.stringify({ access_token: 'EXT', expires_in: 3600 }), { status: 200 }));
  vi.stubGlobal('fetch', fetchMock);
});
afterEach(() => vi.unstubAllGlobals());

const run = (q: string) => finishExternalSignIn(new URLSearchParams(q));

describe('finishExternalSignIn', () => {
  it('a provider error with the wrong or no state gets the fixed state message and keeps the pending sign-in', async () => {
    for (const q of [
      'error=access_denied&error_description=Call+0800-SCAM+to+unlock',
      'error=access_denied&error_description=evil&state=wrong',
      'code=abc&state=wrong',
      'code=abc',
      'state=',
    ]) {
      const e = await run(q).catch((x: Error) => x);
      expect(e).toBeInstanceOf(Error);
      expect((e as Error).message).toBe(OIDC_MESSAGES.stateMismatch);
      expect((e as Error).message).not.toMatch(/SCAM|evil/);
      expect(store.has(KEY)).toBe(true); // not consumed
    }
    expect(fetchMock).not.toHaveBeenCalled();
    // the real response still completes afterwards
    await expect(run(`code=abc&state=${pending.state}`)).resolves.toEqual({ access_token: 'EXT', expires_in: 3600 });
  });

  it('a provider error with the right state shows a fixed message, never error_description', async () => {
    const e = (await run(`error=access_denied&error_description=Call+0800-SCAM&state=${pending.state}`).catch((x: Error) => x)) as Error;
    expect(e.message).toBe(OIDC_MESSAGES.refused);
    expect(e.message).toBe('Sign-in with your company account was cancelled or refused.');
    expect(store.has(KEY)).toBe(false); // this tab's round trip is over
    expect(fetchMock).not.toHaveBeenCalled();
  });

  it('without a pending sign-in it says so (fixed message)', async () => {
    store.clear();
    await expect(run(`code=abc&state=${pending.state}`)).rejects.toThrow(OIDC_MESSAGES.noPending);
  });

  it('the right state and a code exchange the code with the PKCE verifier, once', async () => {
    await expect(run(`code=abc&state=${pending.state}`)).resolves.toEqual({ access_token: 'EXT', expires_in: 3600 });
    expect(fetchMock).toHaveBeenCalledTimes(1);
    const [url, init] = fetchMock.mock.calls[0] as [string, RequestInit];
    expect(url).toBe(pending.token_endpoint);
    const body = new URLSearchParams(String(init.body));
    expect(body.get('code_verifier')).toBe(pending.verifier);
    expect(body.get('redirect_uri')).toBe('https://ims.test/oidc/callback');
    expect(init.credentials).toBe('omit');
    expect(store.has(KEY)).toBe(false);
    // replaying the same URL fails: the pending sign-in was used
    await expect(run(`code=abc&state=${pending.state}`)).rejects.toThrow(OIDC_MESSAGES.noPending);
  });

  it('a refused code exchange gets a fixed message', async () => {
    fetchMock.mockResolvedValueOnce(new Response('{"error":"invalid_grant","error_description":"evil text"}', { status: 400 }));
    await expect(run(`code=abc&state=${pending.state}`)).rejects.toThrow(OIDC_MESSAGES.exchange);
  });
});
