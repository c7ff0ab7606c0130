// Sign-in with an external identity provider (Amazon Cognito): authorization code with PKCE.
// The PKCE verifier and state must survive the redirect to the provider and back, so they are
// kept in sessionStorage for that round trip only (removed when the callback runs); they are not
// tokens and are useless without the one-time authorization code. The provider's access token
// is kept in memory like IMS's own.
import type { OidcConfig } from '../api/types';

const KEY = 'ims.oidc.pending';

interface Discovery {
  authorization_endpoint: string;
  token_endpoint: string;
}

function b64url(bytes: Uint8Array): string {
  let s = '';
  bytes.forEach((b) => (s += String.fromCharCode(b)));
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function random(n: number): string {
  const a = new Uint8Array(n);
  crypto.getRandomValues(a);
  return b64url(a);
}

async function discover(cfg: OidcConfig): Promise<Discovery> {
  const url = cfg.discovery_url ?? `${cfg.issuer}/.well-known/openid-configuration`;
  const res = await fetch(url, { credentials: 'omit' });
  if (!res.ok) throw new Error('discovery failed');
  return (await res.json()) as Discovery;
}

export function redirectUri(): string {
  return `${location.origin}/oidc/callback`;
}

export async function startExternalSignIn(cfg: OidcConfig): Promise<void> {
  const d = await discover(cfg);
  const verifier = random(48);
  const state = random(24);
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier)));
  sessionStorage.setItem(KEY, JSON.stringify({ verifier, state, token_endpoint: d.token_endpoint, client_id: cfg.client_id }));
  const u = new URL(d.authorization_endpoint);
  u.searchParams.set('response_type', 'code');
  u.searchParams.set('client_id', cfg.client_id ?? '');
  u.searchParams.set('redirect_uri', redirectUri());
  u.searchParams.set('scope', 'openid email');
  u.searchParams.set('state', state);
  u.searchParams.set('code_challenge', b64url(digest));
  u.searchParams.set('code_challenge_method', 'S256');
  location.assign(u.toString());
}

/** Completes the flow on /oidc/callback: returns the provider's access token and lifetime. */
export async function finishExternalSignIn(params: URLSearchParams): Promise<{ access_token: string; expires_in: number }> {
  const raw = sessionStorage.getItem(KEY);
  sessionStorage.removeItem(KEY);
  if (!raw) throw new Error('No sign-in was started from this tab.');
  const pending = JSON.parse(raw) as { verifier: string; state: string; token_endpoint: string; client_id: string };
  if (params.get('error')) throw new Error(params.get('error_description') ?? params.get('error') ?? 'Sign-in refused.');
  if (params.get('state') !== pending.state) throw new Error('The sign-in response does not match this tab.');
  const code = params.get('code');
  if (!code) throw new Error('The provider returned no authorization code.');
  const body = new URLSearchParams({
    grant_type: 'authorization_code',
    client_id: pending.client_id,
    code,
    redirect_uri: redirectUri(),
    code_verifier: pending.verifier,
  });
  const res = await fetch(pending.token_endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body,
    credentials: 'omit',
  });
  if (!res.ok) throw new Error('The provider refused the authorization code.');
  const t = (await res.json()) as { access_token: string; expires_in: number };
  return { access_token: t.access_token, expires_in: t.expires_in };
}
