import { useEffect, useState, type FormEvent } from 'react';
import { auth } from '../auth/session';
import { Link, Message, useAction } from '../ui/kit';

export function VerifyEmailPage() {
  const params = new URLSearchParams(location.search);
  const [email, setEmail] = useState(params.get('email') ?? '');
  const [code, setCode] = useState('');
  const [done, setDone] = useState(false);
  const send = useAction();
  const verify = useAction();

  useEffect(() => {
    document.title = 'Verify your email — IMS';
  }, []);

  const sendCode = (e: FormEvent) => {
    e.preventDefault();
    void send.run(async () => {
      await auth.sendVerification(email);
      return 'If this address needs verifying, we have emailed it a 6-digit code, valid for 10 minutes.';
    });
  };
  const check = (e: FormEvent) => {
    e.preventDefault();
    void verify.run(async () => {
      await auth.verifyEmail(email, code.trim());
      setDone(true);
    });
  };

  return (
    <section className="card narrow" aria-labelledby="ve-title">
      <h1 id="ve-title">Verify your email</h1>
      {params.has('email') ? (
        <p className="notice warn">Your email address must be verified before you can sign in.</p>
      ) : null}
      {done ? (
        <p className="notice ok" role="status">
          Your email is verified. <Link to="/login">Sign in</Link>.
        </p>
      ) : (
        <>
          <form onSubmit={sendCode}>
            <label className="field">
              <span>Email</span>
              <input type="email" name="email" autoComplete="username" required value={email} onChange={(e) => setEmail(e.target.value)} />
            </label>
            <Message error={send.error} ok={send.ok} />
            <button type="submit" className="btn wide" disabled={send.busy}>
              Email me a code
            </button>
          </form>
          <form onSubmit={check}>
            <label className="field">
              <span>6-digit code from the email</span>
              <input
                name="otp"
                inputMode="numeric"
                autoComplete="one-time-code"
                maxLength={6}
                required
                value={code}
                onChange={(e) => setCode(e.target.value.replace(/\D/g, ''))}
              />
            </label>
            <Message error={verify.error} />
            <button type="submit" className="btn primary wide" disabled={verify.busy || code.length !== 6 || !email}>
              Verify
            </button>
          </form>
          <p className="links">
            <Link to="/login">Back to sign-in</Link>
          </p>
        </>
      )}
    </section>
  );
}
