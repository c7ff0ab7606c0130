// The shell: restores the session, routes by path, and shows each role only its sections.
// The role areas are lazy-loaded, so the first load carries only the shell and the auth pages.
import { lazy, Suspense, useEffect, useRef, type ReactNode } from 'react';
import { auth, useAuth } from '../auth/session';
import { navigate, useLocation } from './router';
import { Link } from '../ui/kit';
import { LoginPage } from '../pages/Login';
import { ForgotPasswordPage } from '../pages/ForgotPassword';
import { VerifyEmailPage } from '../pages/VerifyEmail';
import { ChangePasswordPage } from '../pages/ChangePassword';
import { OidcCallbackPage } from '../pages/OidcCallback';
import type { Role } from '../api/types';
import { homeFor } from './home';

const AdminArea = lazy(() => import('../admin/AdminArea'));
const ManagerArea = lazy(() => import('../manager/ManagerArea'));
const LeaderArea = lazy(() => import('../leader/LeaderArea'));

interface Section {
  role: Role;
  label: string;
  links: { to: string; label: string }[];
}

const SECTIONS: Section[] = [
  {
    role: 'LINE_LEADER',
    label: 'Shop floor',
    links: [{ to: '/tasks', label: 'My tasks' }],
  },
  {
    role: 'MANAGER',
    label: 'Production',
    links: [
      { to: '/manager', label: 'Dashboard' },
      { to: '/manager/schedule', label: 'Schedule' },
      { to: '/manager/orders', label: 'Orders' },
      { to: '/manager/lines', label: 'Lines' },
      { to: '/manager/products', label: 'Products' },
      { to: '/manager/documents', label: 'Documents' },
      { to: '/manager/reasons', label: 'Reasons' },
      { to: '/manager/alert-rules', label: 'Alert rules' },
    ],
  },
  {
    role: 'ADMIN',
    label: 'Administration',
    links: [
      { to: '/admin/users', label: 'Users' },
      { to: '/admin/audit', label: 'Audit log' },
      { to: '/admin/mail', label: 'Failed emails' },
    ],
  },
];

const OIDC_CALLBACK = '/oidc/callback';
const PUBLIC = ['/login', '/forgot-password', '/verify-email', OIDC_CALLBACK];


export function App() {
  const state = useAuth();
  const { path } = useLocation();

  useEffect(() => {
    // Not on the OIDC callback: there the external sign-in sets up the session, and a leftover
    // IMS refresh cookie (someone else's, on a shared terminal) must not race it and take over.
    if (location.pathname !== OIDC_CALLBACK) void auth.restore();
  }, []);

  // Signed out (or the session ended) on a private page: go to the login page, remembering where.
  useEffect(() => {
    if (state.status === 'signed_out' && !PUBLIC.includes(path)) {
      const next = path === '/' ? '' : `?next=${encodeURIComponent(path)}`;
      navigate(`/login${next}`, true);
    }
  }, [state.status, path]);

  if (PUBLIC.includes(path) && path !== '/login') {
    return <Frame>{publicPage(path)}</Frame>;
  }
  if (state.status === 'unknown') {
    return (
      <Frame>
        <p className="loading" role="status">
          Loading…
        </p>
      </Frame>
    );
  }
  if (state.status === 'signed_out' || path === '/login') {
    if (state.status === 'signed_in' && state.user) {
      return <Redirect to={homeFor(state.user.roles)} />;
    }
    return (
      <Frame>
        <LoginPage message={state.message} />
      </Frame>
    );
  }
  const user = state.user!;
  return <Shell roles={user.roles} name={user.name} path={path} />;
}

function publicPage(path: string) {
  switch (path) {
    case '/forgot-password':
      return <ForgotPasswordPage />;
    case '/verify-email':
      return <VerifyEmailPage />;
    default:
      return <OidcCallbackPage />;
  }
}

function Redirect(props: { to: string }) {
  useEffect(() => navigate(props.to, true), [props.to]);
  return null;
}

function Frame(props: { children: ReactNode }) {
  return (
    <div className="frame">
      <header className="frame-brand">
        <span className="logo" aria-hidden="true">
          IMS
        </span>
        <span>Production management</span>
      </header>
      <main id="main" className="frame-main">
        {props.children}
      </main>
    </div>
  );
}

function Shell(props: { roles: readonly Role[]; name: string; path: string }) {
  const { roles, path } = props;
  const sections = SECTIONS.filter((s) => roles.includes(s.role));
  const mainRef = useRef<HTMLElement>(null);

  // Move focus to the page heading after client-side navigation (screen readers, keyboards).
  useEffect(() => {
    const h = document.getElementById('page-title');
    if (h && document.activeElement === document.body) h.focus({ preventScroll: true });
  }, [path]);

  let content: ReactNode;
  if (path === '/') content = <Redirect to={homeFor(roles)} />;
  else if (path === '/account') content = <ChangePasswordPage />;
  else if (path.startsWith('/admin')) content = roles.includes('ADMIN') ? <AdminArea path={path} /> : <Denied />;
  else if (path.startsWith('/manager')) content = roles.includes('MANAGER') ? <ManagerArea path={path} /> : <Denied />;
  else if (path.startsWith('/tasks')) content = roles.includes('LINE_LEADER') ? <LeaderArea path={path} /> : <Denied />;
  else content = <NotFound />;

  return (
    <div className="shell">
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <span className="logo" aria-hidden="true">
          IMS
        </span>
        <nav aria-label="Main" className="nav">
          {sections.map((s) => (
            <div className="nav-group" key={s.role}>
              <span className="nav-label">{s.label}</span>
              <ul>
                {s.links.map((l) => (
                  <li key={l.to}>
                    <Link to={l.to} current={path === l.to}>
                      {l.label}
                    </Link>
                  </li>
                ))}
              </ul>
            </div>
          ))}
        </nav>
        <div className="who">
          <Link to="/account" current={path === '/account'}>
            <span className="sr-only">Account of </span>
            {props.name}
          </Link>
          <button type="button" className="btn ghost" onClick={() => void auth.logout()}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" ref={mainRef} className="content">
        <Suspense
          fallback={
            <p className="loading" role="status">
              Loading…
            </p>
          }
        >
          {content}
        </Suspense>
      </main>
    </div>
  );
}

function Denied() {
  return (
    <div className="notice error" role="alert">
      <h1>Not available</h1>
      <p>Your role does not include this section.</p>
    </div>
  );
}

function NotFound() {
  return (
    <div className="empty">
      <h1>Page not found</h1>
      <p>
        <Link to="/">Go to your start page</Link>
      </p>
    </div>
  );
}
