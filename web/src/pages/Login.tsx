import { useEffect, useState, type FormEvent } from 'react';
import { auth } from '../auth/session';
import { startExternalSignIn } from '../auth/oidc';
import { navigate } from '../app/router';
import { homeFor } from '../app/home';
import { Link, Message, useAction } from '../ui/kit';
import { ApiError } from '../api/problem';
import type { OidcConfig } from '../api/types';

export function LoginPage(props: { message: string | null }) {
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [oidc, setOidc] = useState<OidcConfig | null>(null);
  const action = useAction();

  useEffect(() => {
    document.title = 'Sign in — IMS';
    fetch('/auth/oidc/config', { headers: { accept: 'application/json' } })
      .then((r) => (r.ok ? (r.json() as Promise<OidcConfig>) : null))
      .then((c) => setOidc(c && c.enabled ? c : null))
      .catch(() => setOidc(null));
  }, []);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    await action.run(async () => {
      try {
        const user = await auth.login(email, password);
        const next = new URLSearchParams(location.search).get('next');
        navigate(next && next.startsWith('/') && !next.startsWith('//') ? next : homeFor(user.roles), true);
      } catch (err) {
        if (err instanceof ApiError && err.code === 'email_not_verified') {
          navigate(`/verify-email?email=${encodeURIComponent(email)}&sent=0`);
          return;
        }
        throw err;
      }
    });
  };

  return (
    <section className="card narrow" aria-labelledby="login-title">
      <h1 id="login-title">Sign in</h1>
      {props.message ? (
        <p className="notice warn" role="alert">
          {props.message}
        </p>
      ) : null}
      <form onSubmit={submit} noValidate={false}>
        <label className="field">
          <span>Email</span>
          <input type="email" name="email" autoComplete="username" required value={email} onChange={(e) => setEmail(e.target.value)} />
        </label>
        <label className="field">
          <span>Password</span>
          <input
            type="password"
            name="password"
            autoComplete="current-password"
            required
            value={password}
            onChange={(e) => setPassword(e.target.value)}
          />
        </label>
        <Message error={action.error} />
        <button type="submit" className="btn primary wide" disabled={action.busy}>
          {action.busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
      {oidc ? (
        <div className="or">
          <span>or</span>
          <button type="button" className="btn wide" onClick={() => void action.run(() => startExternalSignIn(oidc))}>
            Sign in with your company account
          </button>
        </div>
      ) : null}
      <p className="links">
        <Link to="/forgot-password">Forgot your password?</Link>
        <Link to="/verify-email">Verify your email</Link>
      </p>
    </section>
  );
}
