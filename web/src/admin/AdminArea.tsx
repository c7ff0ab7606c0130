// Administration: users (search, create, roles, disable, revoke sessions, unlock), the audit
// log with filters, and emails that could not be delivered.
import { useMemo, useState, type FormEvent } from 'react';
import { api, qs } from '../api/client';
import { Loaded, Message, PageTitle, useAction, useAsync, fmtTime } from '../ui/kit';
import type { AdminUser, AuditPage, FailedPage, Role, UserPage } from '../api/types';

const ROLES: Role[] = ['ADMIN', 'MANAGER', 'LINE_LEADER'];
const ROLE_LABEL: Record<Role, string> = { ADMIN: 'Admin', MANAGER: 'Manager', LINE_LEADER: 'Line leader' };

export default function AdminArea(props: { path: string }) {
  switch (props.path) {
    case '/admin/users':
      return <Users />;
    case '/admin/audit':
      return <Audit />;
    case '/admin/mail':
      return <FailedMail />;
    default:
      return <p className="empty">Page not found.</p>;
  }
}

/** Every user, following cursors (a factory has tens to hundreds of accounts). */
async function allUsers(): Promise<AdminUser[]> {
  const out: AdminUser[] = [];
  let cursor: string | undefined;
  for (let i = 0; i < 20; i++) {
    const page = await api.get<UserPage>(`/api/admin/users${qs({ cursor, limit: 200 })}`);
    out.push(...page.items);
    if (!page.next_cursor) break;
    cursor = page.next_cursor;
  }
  return out;
}

function Users() {
  const users = useAsync(allUsers, []);
  const [q, setQ] = useState('');
  const [selected, setSelected] = useState<string | null>(null);
  const filtered = useMemo(() => {
    const s = q.trim().toLowerCase();
    return (users.data ?? []).filter((u) => !s || u.email.toLowerCase().includes(s) || u.name.toLowerCase().includes(s) || u.roles.some((r) => r.toLowerCase().includes(s)));
  }, [users.data, q]);
  const current = users.data?.find((u) => u.id === selected) ?? null;
  return (
    <>
      <PageTitle>Users</PageTitle>
      <div className="toolbar">
        <label className="inline-field grow">
          <span>Search</span>
          <input type="search" placeholder="Name, email or role" value={q} onChange={(e) => setQ(e.target.value)} />
        </label>
      </div>
      <Loaded state={users} what="users" isEmpty={(l) => l.length === 0} empty="No users.">
        {() =>
          filtered.length === 0 ? (
            <p className="empty">No user matches “{q}”.</p>
          ) : (
            <div className="table-wrap">
              <table className="list">
                <caption className="sr-only">Users</caption>
                <thead>
                  <tr>
                    <th scope="col">Name</th>
                    <th scope="col">Email</th>
                    <th scope="col">Roles</th>
                    <th scope="col">State</th>
                    <th scope="col">Created</th>
                  </tr>
                </thead>
                <tbody>
                  {filtered.map((u) => (
                    <tr key={u.id} className={u.id === selected ? 'sel' : ''}>
                      <td>
                        <button type="button" className="linkish" onClick={() => setSelected(u.id === selected ? null : u.id)} aria-expanded={u.id === selected}>
                          {u.name}
                        </button>
                      </td>
                      <td>{u.email}</td>
                      <td>{u.roles.map((r) => ROLE_LABEL[r]).join(', ') || '—'}</td>
                      <td>
                        {u.disabled ? <span className="badge st-inactive">disabled</span> : <span className="badge st-running">active</span>}{' '}
                        {u.email_verified ? null : <span className="badge st-paused">unverified</span>}
                      </td>
                      <td>{fmtTime(u.created_at)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )
        }
      </Loaded>
      {current ? <UserPanel key={current.id} user={current} onChanged={users.reload} /> : null}
      <CreateUser onCreated={users.reload} />
    </>
  );
}

function RoleBoxes(props: { value: Role[]; onChange: (r: Role[]) => void; legend: string }) {
  return (
    <fieldset className="checks">
      <legend>{props.legend}</legend>
      {ROLES.map((r) => (
        <label key={r}>
          <input
            type="checkbox"
            checked={props.value.includes(r)}
            onChange={(e) => props.onChange(e.target.checked ? [...props.value, r] : props.value.filter((x) => x !== r))}
          />
          {ROLE_LABEL[r]}
        </label>
      ))}
    </fieldset>
  );
}

function UserPanel(props: { user: AdminUser; onChanged: () => void }) {
  const u = props.user;
  const [roles, setRoles] = useState<Role[]>([...u.roles]);
  const [name, setName] = useState(u.name);
  const action = useAction();
  const patch = (body: Record<string, unknown>, ok: string) =>
    action.run(async () => {
      await api.patch<AdminUser>(`/api/admin/users/${u.id}`, body);
      props.onChanged();
      return ok;
    });
  const post = (what: string, ok: string) =>
    action.run(async () => {
      await api.post(`/api/admin/users/${u.id}/${what}`);
      return ok;
    });
  const save = (e: FormEvent) => {
    e.preventDefault();
    void patch({ name, roles }, 'Saved. Role changes apply to the user’s sessions within seconds.');
  };
  return (
    <section className="card" aria-labelledby="up-h">
      <h2 id="up-h">
        {u.name} <span className="muted">{u.email}</span>
      </h2>
      <form onSubmit={save} className="row">
        <label className="field">
          <span>Name</span>
          <input required value={name} onChange={(e) => setName(e.target.value)} />
        </label>
        <RoleBoxes value={roles} onChange={setRoles} legend="Roles" />
        <button type="submit" className="btn primary" disabled={action.busy}>
          Save
        </button>
      </form>
      <div className="button-row">
        <button type="button" className={`btn ${u.disabled ? '' : 'danger'}`} disabled={action.busy} onClick={() => void patch({ disabled: !u.disabled }, u.disabled ? 'Account enabled.' : 'Account disabled; every session was signed out.')}>
          {u.disabled ? 'Enable account' : 'Disable account'}
        </button>
        <button type="button" className="btn" disabled={action.busy} onClick={() => void post('revoke-sessions', 'Every session of this user was signed out.')}>
          Sign out everywhere
        </button>
        <button type="button" className="btn" disabled={action.busy} onClick={() => void post('unlock', 'Login lock cleared.')}>
          Unlock login
        </button>
      </div>
      <Message error={action.error} ok={action.ok} />
    </section>
  );
}

function CreateUser(props: { onCreated: () => void }) {
  const [email, setEmail] = useState('');
  const [name, setName] = useState('');
  const [roles, setRoles] = useState<Role[]>(['LINE_LEADER']);
  const action = useAction();
  const submit = (e: FormEvent) => {
    e.preventDefault();
    void action.run(async () => {
      await api.post('/api/admin/users', { email, name, roles });
      props.onCreated();
      setEmail('');
      setName('');
      return `Created. ${email} has been emailed a code to set their password.`;
    });
  };
  return (
    <section className="card" aria-labelledby="cu-h">
      <h2 id="cu-h">Create a user</h2>
      <p className="muted">The new user receives an email with a one-time code to choose their own password.</p>
      <form onSubmit={submit} className="row">
        <label className="field">
          <span>Email</span>
          <input type="email" name="new-email" required value={email} onChange={(e) => setEmail(e.target.value)} />
        </label>
        <label className="field">
          <span>Full name</span>
          <input name="new-name" required value={name} onChange={(e) => setName(e.target.value)} />
        </label>
        <RoleBoxes value={roles} onChange={setRoles} legend="Roles" />
        <button type="submit" className="btn primary" disabled={action.busy || roles.length === 0}>
          Create user
        </button>
      </form>
      <Message error={action.error} ok={action.ok} />
    </section>
  );
}

const AUDIT_TYPES = [
  'login_ok',
  'login_failed',
  'login_locked',
  'login_unlocked',
  'refresh_reuse',
  'logout',
  'user_created',
  'roles_changed',
  'user_renamed',
  'user_disabled',
  'user_enabled',
  'sessions_revoked',
  'password_changed',
  'password_reset',
  'otp_sent',
  'otp_failed',
  'otp_used',
  'mail_failed',
  'mail_retried',
  'config_loaded',
  'secret_rotated',
];

function Audit() {
  const [type, setType] = useState('');
  const [userId, setUserId] = useState('');
  const [since, setSince] = useState('');
  const [applied, setApplied] = useState({ type: '', userId: '', since: '' });
  const [pages, setPages] = useState<string[]>([]);
  const cursor = pages[pages.length - 1];
  const audit = useAsync(
    () =>
      api.get<AuditPage>(
        `/api/admin/audit${qs({
          type: applied.type,
          user_id: applied.userId,
          since: applied.since ? new Date(applied.since).toISOString().replace(/\.\d{3}Z$/, 'Z') : undefined,
          cursor,
          limit: 50,
        })}`,
      ),
    [applied, cursor],
  );
  const users = useAsync(allUsers, []);
  const who = (id: string | null | undefined) => (id ? (users.data?.find((u) => u.id === id)?.email ?? id.slice(0, 8)) : '—');
  const apply = (e: FormEvent) => {
    e.preventDefault();
    setPages([]);
    setApplied({ type, userId, since });
  };
  return (
    <>
      <PageTitle>Audit log</PageTitle>
      <form className="toolbar" onSubmit={apply} aria-label="Filter the audit log">
        <label className="inline-field">
          <span>Event</span>
          <select name="type" value={type} onChange={(e) => setType(e.target.value)}>
            <option value="">All events</option>
            {AUDIT_TYPES.map((t) => (
              <option key={t} value={t}>
                {t.replace(/_/g, ' ')}
              </option>
            ))}
          </select>
        </label>
        <label className="inline-field">
          <span>User</span>
          <select name="user" value={userId} onChange={(e) => setUserId(e.target.value)}>
            <option value="">Anyone</option>
            {(users.data ?? []).map((u) => (
              <option key={u.id} value={u.id}>
                {u.email}
              </option>
            ))}
          </select>
        </label>
        <label className="inline-field">
          <span>Since</span>
          <input type="datetime-local" value={since} onChange={(e) => setSince(e.target.value)} />
        </label>
        <button type="submit" className="btn primary">
          Apply filters
        </button>
      </form>
      <Loaded state={audit} what="audit events" isEmpty={(p) => p.items.length === 0} empty="No events match these filters.">
        {(p) => (
          <>
            <div className="table-wrap">
              <table className="list audit">
                <caption className="sr-only">Audit events, newest first</caption>
                <thead>
                  <tr>
                    <th scope="col">When</th>
                    <th scope="col">Event</th>
                    <th scope="col">Actor</th>
                    <th scope="col">Subject</th>
                    <th scope="col">Address</th>
                    <th scope="col">Detail</th>
                  </tr>
                </thead>
                <tbody>
                  {p.items.map((a) => (
                    <tr key={a.id}>
                      <td>{fmtTime(a.at)}</td>
                      <td>
                        <code>{a.type}</code>
                      </td>
                      <td>{who(a.actor_id)}</td>
                      <td>{who(a.subject_id)}</td>
                      <td>{a.ip ?? '—'}</td>
                      <td className="detail">{a.detail && Object.keys(a.detail as object).length ? JSON.stringify(a.detail) : ''}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
            <div className="pager">
              <button type="button" className="btn" disabled={pages.length === 0} onClick={() => setPages(pages.slice(0, -1))}>
                Newer
              </button>
              <button type="button" className="btn" disabled={!p.next_cursor} onClick={() => p.next_cursor && setPages([...pages, p.next_cursor])}>
                Older
              </button>
            </div>
          </>
        )}
      </Loaded>
    </>
  );
}

function FailedMail() {
  const mail = useAsync(() => api.get<FailedPage>('/api/admin/mail/failed'), []);
  const action = useAction();
  return (
    <>
      <PageTitle>Failed emails</PageTitle>
      <Message error={action.error} ok={action.ok} />
      <Loaded state={mail} what="failed emails" isEmpty={(p) => p.items.length === 0} empty="No failed emails. Every message was delivered.">
        {(p) => (
          <div className="table-wrap">
            <table className="list">
              <thead>
                <tr>
                  <th scope="col">Recipient</th>
                  <th scope="col">Template</th>
                  <th scope="col">Attempts</th>
                  <th scope="col">Last error</th>
                  <th scope="col">Created</th>
                  <th scope="col">
                    <span className="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {p.items.map((m) => (
                  <tr key={m.id}>
                    <td>{m.recipient}</td>
                    <td>{m.template}</td>
                    <td className="num">{m.attempts}</td>
                    <td>{m.last_error ?? '—'}</td>
                    <td>{fmtTime(m.created_at)}</td>
                    <td>
                      <button
                        type="button"
                        className="btn"
                        disabled={action.busy}
                        onClick={() =>
                          void action.run(async () => {
                            await api.post(`/api/admin/mail/${m.id}/retry`);
                            mail.reload();
                            return `Queued again for ${m.recipient}.`;
                          })
                        }
                      >
                        Retry
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Loaded>
    </>
  );
}
