// Small shared building blocks: links, async data with loading/empty/error states, messages.
import { useCallback, useEffect, useRef, useState, type ReactNode, type MouseEvent } from 'react';
import { navigate } from '../app/router';
import { describe } from '../api/problem';

export function Link(props: { to: string; children: ReactNode; className?: string; current?: boolean }) {
  const onClick = (e: MouseEvent<HTMLAnchorElement>) => {
    if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
    e.preventDefault();
    navigate(props.to);
  };
  return (
    <a href={props.to} onClick={onClick} className={props.className} aria-current={props.current ? 'page' : undefined}>
      {props.children}
    </a>
  );
}

export interface Async<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload: () => void;
  setData: (d: T) => void;
}

/** Loads data, re-loading when `deps` change or on reload(); optional polling. */
export function useAsync<T>(load: () => Promise<T>, deps: unknown[], pollMs?: number): Async<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  useEffect(() => {
    let live = true;
    setLoading(true);
    load().then(
      (d) => {
        if (!live) return;
        setData(d);
        setError(null);
        setLoading(false);
      },
      (e) => {
        if (!live) return;
        setError(e);
        setLoading(false);
      },
    );
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick]);
  useEffect(() => {
    if (!pollMs) return;
    const id = window.setInterval(() => {
      if (document.visibilityState === 'visible') reload();
    }, pollMs);
    return () => window.clearInterval(id);
  }, [pollMs, reload]);
  return { data, error, loading, reload, setData };
}

/** Renders the loading / error / empty states around a data view. */
export function Loaded<T>(props: {
  state: Async<T>;
  what: string;
  isEmpty?: (d: T) => boolean;
  empty?: ReactNode;
  children: (d: T) => ReactNode;
}) {
  const { data, error, loading, reload } = props.state;
  if (error && data === undefined) {
    return (
      <div className="notice error" role="alert">
        <p>Could not load {props.what}. {describe(error)}</p>
        <button type="button" className="btn" onClick={reload}>
          Try again
        </button>
      </div>
    );
  }
  if (data === undefined) {
    return (
      <p className="loading" role="status">
        Loading {props.what}…
      </p>
    );
  }
  return (
    <>
      {error ? (
        <p className="notice error" role="alert">
          Could not refresh {props.what}: {describe(error)}
        </p>
      ) : null}
      {loading ? <span className="sr-only" role="status">Refreshing {props.what}</span> : null}
      {props.isEmpty?.(data) ? <div className="empty">{props.empty ?? `No ${props.what} yet.`}</div> : props.children(data)}
    </>
  );
}

/** An error or success message near a form, announced to screen readers. */
export function Message(props: { error?: unknown; ok?: string | null }) {
  if (props.error) {
    return (
      <p className="notice error" role="alert">
        {describe(props.error)}
      </p>
    );
  }
  if (props.ok) {
    return (
      <p className="notice ok" role="status">
        {props.ok}
      </p>
    );
  }
  return null;
}

/** Runs an action with busy state and captured error. */
export function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [ok, setOk] = useState<string | null>(null);
  const mounted = useRef(true);
  useEffect(
    () => () => {
      mounted.current = false;
    },
    [],
  );
  const run = useCallback(async (fn: () => Promise<string | null | void>): Promise<boolean> => {
    setBusy(true);
    setError(null);
    setOk(null);
    try {
      const msg = await fn();
      if (mounted.current) setOk(msg ?? null);
      return true;
    } catch (e) {
      if (mounted.current) setError(e);
      return false;
    } finally {
      if (mounted.current) setBusy(false);
    }
  }, []);
  return { busy, error, ok, run, setError, setOk };
}

export function PageTitle(props: { children: ReactNode; actions?: ReactNode }) {
  useEffect(() => {
    if (typeof props.children === 'string') document.title = `${props.children} — IMS`;
  }, [props.children]);
  return (
    <div className="page-head">
      <h1 tabIndex={-1} id="page-title">
        {props.children}
      </h1>
      {props.actions ? <div className="actions">{props.actions}</div> : null}
    </div>
  );
}

export function pct(x: number | null | undefined): string {
  return x === null || x === undefined ? '—' : `${(x * 100).toFixed(1)}%`;
}

export function fmtTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  return d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

export function today(offsetDays = 0): string {
  const d = new Date();
  d.setDate(d.getDate() + offsetDays);
  return isoDate(d);
}

export function isoDate(d: Date): string {
  const m = String(d.getMonth() + 1).padStart(2, '0');
  const day = String(d.getDate()).padStart(2, '0');
  return `${d.getFullYear()}-${m}-${day}`;
}

export function addDays(date: string, n: number): string {
  const d = new Date(`${date}T12:00:00`);
  d.setDate(d.getDate() + n);
  return isoDate(d);
}
