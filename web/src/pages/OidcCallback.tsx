import { useEffect, useState } from 'react';
import { auth } from '../auth/session';
import { finishExternalSignIn } from '../auth/oidc';
import { navigate } from '../app/router';
import { homeFor } from '../app/home';
import { describe } from '../api/problem';
import { Link } from '../ui/kit';

export function OidcCallbackPage() {
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    const params = new URLSearchParams(location.search);
    finishExternalSignIn(params)
      .then((t) => auth.acceptExternal(t.access_token, t.expires_in))
      .then((user) => navigate(homeFor(user.roles), true))
      .catch((e: unknown) => {
        // No session (and no start-up restore ran on this page): the login page must not wait.
        if (auth.getState().status !== 'signed_in') auth.endSession(null);
        // Our own fixed messages (oidc.ts) or a problem in plain words; never text from the URL.
        setError(e instanceof Error && e.name === 'Error' ? e.message : describe(e));
      });
  }, []);
  return (
    <section className="card narrow">
      <h1>Signing in…</h1>
      {error ? (
        <>
          <p className="notice error" role="alert">
            {error}
          </p>
          <Link to="/login">Back to sign-in</Link>
        </>
      ) : (
        <p role="status">Completing sign-in with your company account.</p>
      )}
    </section>
  );
}
