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

export const OIDC_MESSAGES = {
  noPending: 'No sign-in with your company account was started from this tab. Start again from the sign-in page.',
  stateMismatch: 'This sign-in response does not belong to a sign-in started from this tab. Start again from the sign-in page.',
  refused: 'Sign-in with your company account was cancelled or refused.',
  noCode: 'Your company account did not complete the sign-in. Start again from the sign-in page.',
  exchange: 'Your company account refused to complete the sign-in. Start again from the sign-in page.',
} as const;

/**
 * Completes the flow on /oidc/callback: returns the provider's access token and lifetime.
 * The `state` is checked before anything else in the URL: a crafted link without this tab's
 * state gets a fixed message and does not consume the pending sign-in. Nothing from the URL
 * (such as `error_description`) is ever shown: the messages are fixed.
 */
export async function finishExternalSignIn(params: URLSearchParams): Promise<{ access_token: string; expires_in: number }> {
  const raw = sessionStorage.getItem(KEY);
  if (!raw) throw new Error(OIDC_MESSAGES.noPending);
  let pending: { verifier: string; state: string; token_endpoint: string; client_id: string };
  try {
    pending = JSON.parse(raw) as typeof pending;
  } catch {
    sessionStorage.removeItem(KEY);
    throw new Error(OIDC_MESSAGES.noPending);
  }
  const state = params.get('state');
  if (!state || typeof pending.state !== 'string' || !pending.state || state !== pending.state) {
    throw new Error(OIDC_MESSAGES.stateMismatch);
  }
  // The response belongs to this tab's sign-in: it is used up, whatever it says.
  sessionStorage.removeItem(KEY);
  if (params.get('error')) throw new Error(OIDC_MESSAGES.refused);
  const code = params.get('code');
  if (!code) throw new Error(OIDC_MESSAGES.noCode);
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
  if (!res.ok) throw new Error(OIDC_MESSAGES.exchange);
  const t = (await res.json()) as { access_token: string; expires_in: number };
  return { access_token: t.access_token, expires_in: t.expires_in };
}
