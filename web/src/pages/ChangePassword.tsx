import { useState, type FormEvent } from 'react';
import { auth, useAuth } from '../auth/session';
import { Message, PageTitle, useAction } from '../ui/kit';
import { PasswordInput } from './PasswordInput';

export function ChangePasswordPage() {
  const { user } = useAuth();
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [confirm, setConfirm] = useState('');
  const [mismatch, setMismatch] = useState(false);
  const action = useAction();

  const submit = (e: FormEvent) => {
    e.preventDefault();
    setMismatch(next !== confirm);
    if (next !== confirm) return;
    void action.run(async () => {
      await auth.changePassword(current, next);
      setCurrent('');
      setNext('');
      setConfirm('');
      return 'Your password has been changed. Your other sessions (other devices and browsers) were signed out.';
    });
  };

  return (
    <>
      <PageTitle>Your account</PageTitle>
      <dl className="facts">
        <dt>Name</dt>
        <dd>{user?.name}</dd>
        <dt>Email</dt>
        <dd>
          {user?.email} {user?.email_verified ? '(verified)' : '(not verified)'}
        </dd>
        <dt>Roles</dt>
        <dd>{user?.roles.join(', ')}</dd>
      </dl>
      <section className="card narrow" aria-labelledby="cp-title">
        <h2 id="cp-title">Change password</h2>
        <form onSubmit={submit}>
          <PasswordInput label="Current password" value={current} onChange={setCurrent} autoComplete="current-password" name="current-password" hint={false} />
          <PasswordInput label="New password" value={next} onChange={setNext} autoComplete="new-password" name="new-password" />
          <PasswordInput label="Repeat the new password" value={confirm} onChange={setConfirm} autoComplete="new-password" name="confirm-password" hint={false} />
          {mismatch ? (
            <p className="notice error" role="alert">
              The two new passwords are not the same.
            </p>
          ) : null}
          <Message error={action.error} ok={action.ok} />
          <button type="submit" className="btn primary" disabled={action.busy}>
            Change password
          </button>
        </form>
      </section>
    </>
  );
}
