// Forgot password → the code from the email → a new password. The reset token returned for the
// code stays in this component's memory only, for the minutes it takes to choose a password.
import { useEffect, useState, type FormEvent } from 'react';
import { auth } from '../auth/session';
import { Link, Message, useAction } from '../ui/kit';
import { PasswordInput } from './PasswordInput';

type Step = 'email' | 'code' | 'password' | 'done';

export function ForgotPasswordPage() {
  const [step, setStep] = useState<Step>('email');
  const [email, setEmail] = useState('');
  const [code, setCode] = useState('');
  const [resetToken, setResetToken] = useState<string | null>(null);
  const [password, setPassword] = useState('');
  const [confirm, setConfirm] = useState('');
  const [mismatch, setMismatch] = useState(false);
  const action = useAction();

  useEffect(() => {
    document.title = 'Reset your password — IMS';
  }, []);

  const sendCode = (e: FormEvent) => {
    e.preventDefault();
    void action.run(async () => {
      await auth.forgotPassword(email);
      setStep('code');
      return 'If an account exists for this address, we have emailed it a 6-digit code. It is valid for 10 minutes.';
    });
  };
  const checkCode = (e: FormEvent) => {
    e.preventDefault();
    void action.run(async () => {
      setResetToken(await auth.verifyResetCode(email, code.trim()));
      setStep('password');
    });
  };
  const setNew = (e: FormEvent) => {
    e.preventDefault();
    setMismatch(password !== confirm);
    if (password !== confirm) return;
    void action.run(async () => {
      await auth.resetPassword(resetToken ?? '', password);
      setResetToken(null);
      setStep('done');
    });
  };


  return (
    <section className="card narrow" aria-labelledby="fp-title">
      <h1 id="fp-title">Reset your password</h1>
      <ol className="steps" aria-label="Progress">
        <li aria-current={step === 'email' ? 'step' : undefined}>Email</li>
        <li aria-current={step === 'code' ? 'step' : undefined}>Code</li>
        <li aria-current={step === 'password' ? 'step' : undefined}>New password</li>
      </ol>
      {step === 'email' && (
        <form onSubmit={sendCode}>
          <label className="field">
            <span>Your account's email</span>
            <input type="email" name="email" autoComplete="username" required value={email} onChange={(e) => setEmail(e.target.value)} />
          </label>
          <Message error={action.error} />
          <button type="submit" className="btn primary wide" disabled={action.busy}>
            Email me a code
          </button>
        </form>
      )}
      {step === 'code' && (
        <form onSubmit={checkCode}>
          <Message ok={action.ok} error={action.error} />
          <label className="field">
            <span>6-digit code from the email</span>
            <input
              name="otp"
              inputMode="numeric"
              autoComplete="one-time-code"
              pattern="[0-9]{6}"
              maxLength={6}
              required
              value={code}
              onChange={(e) => setCode(e.target.value.replace(/\D/g, ''))}
            />
          </label>
          <button type="submit" className="btn primary wide" disabled={action.busy || code.length !== 6}>
            Check the code
          </button>
          <button type="button" className="btn ghost wide" onClick={() => setStep('email')}>
            Send a new code
          </button>
        </form>
      )}
      {step === 'password' && (
        <form onSubmit={setNew}>
          <PasswordInput label="New password" value={password} onChange={setPassword} autoComplete="new-password" name="new-password" />
          <PasswordInput label="Repeat the new password" value={confirm} onChange={setConfirm} autoComplete="new-password" name="confirm-password" hint={false} />
          {mismatch ? (
            <p className="notice error" role="alert">
              The two passwords are not the same.
            </p>
          ) : (
            <Message error={action.error} />
          )}
          <button type="submit" className="btn primary wide" disabled={action.busy}>
            Set the new password
          </button>
        </form>
      )}
      {step === 'done' && (
        <p className="notice ok" role="status">
          Your password has been changed and every session of your account was signed out. <Link to="/login">Sign in</Link> with
          the new password.
        </p>
      )}
      {step !== 'done' && (
        <p className="links">
          <Link to="/login">Back to sign-in</Link>
        </p>
      )}
    </section>
  );
}
