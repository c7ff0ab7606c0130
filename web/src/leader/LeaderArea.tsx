// A line leader's day: large touch-friendly task cards (≥48 px targets) for a 10-inch tablet.
import { useState, type FormEvent } from 'react';
import { api, newIdempotencyKey } from '../api/client';
import { ApiError, describe } from '../api/problem';
import { download } from '../api/download';
import { Loaded, PageTitle, useAction, useAsync, Message, fmtTime } from '../ui/kit';
import type { DocumentMeta, Reason, WorkOrder } from '../api/types';

export default function LeaderArea(_props: { path: string }) {
  const tasks = useAsync(() => api.get<WorkOrder[]>('/api/my/tasks'), [], 30_000);
  const reasons = useAsync(() => api.get<Reason[]>('/api/reasons'), []);
  const [notice, setNotice] = useState<string | null>(null);

  // Tasks this screen changed, as the server answered: a list polled from another server instance
  // may be up to a second older (the task-list cache), and must not undo what the leader just did.
  const [changed, setChanged] = useState<Record<string, WorkOrder>>({});
  const newest = (t: WorkOrder) => {
    const mine = changed[t.id];
    return mine && mine.version > t.version ? mine : t;
  };
  const replace = (wo: WorkOrder) => {
    setChanged((c) => ({ ...c, [wo.id]: wo }));
    if (tasks.data) tasks.setData(tasks.data.map((t) => (t.id === wo.id ? wo : t)));
  };

  return (
    <div className="leader">
      <PageTitle
        actions={
          <button type="button" className="btn big" onClick={tasks.reload}>
            Refresh
          </button>
        }
      >
        My tasks
      </PageTitle>
      {notice ? (
        <p className="notice warn" role="alert">
          {notice}
        </p>
      ) : null}
      <Loaded
        state={tasks}
        what="your tasks"
        isEmpty={(d) => d.length === 0}
        empty={<p>No published tasks on your lines today. When the planner publishes the schedule, your tasks appear here.</p>}
      >
        {(polled) => {
          const list = polled.map(newest);
          const open = list.filter((t) => t.status !== 'completed' && t.status !== 'cancelled').sort(byUrgency);
          const done = list.filter((t) => t.status === 'completed' || t.status === 'cancelled');
          const card = (t: WorkOrder) => (
            <li key={t.id}>
              <TaskCard
                task={t}
                reasons={reasons.data ?? []}
                onChanged={(wo) => {
                  setNotice(null);
                  replace(wo);
                }}
                onStale={(msg) => {
                  setNotice(msg);
                  tasks.reload();
                }}
              />
            </li>
          );
          return (
            <>
              {open.length ? <ul className="task-grid">{open.map(card)}</ul> : <p className="empty">Everything on your lines is done for now.</p>}
              {done.length ? (
                <>
                  <h2 className="group">Done</h2>
                  <ul className="task-grid">{done.map(card)}</ul>
                </>
              ) : null}
            </>
          );
        }}
      </Loaded>
    </div>
  );
}

const RANK: Record<string, number> = { in_progress: 0, paused: 1, planned: 2 };
function byUrgency(a: WorkOrder, b: WorkOrder): number {
  return (RANK[a.status] ?? 9) - (RANK[b.status] ?? 9) || a.work_date.localeCompare(b.work_date) || a.shift.localeCompare(b.shift) || a.sequence - b.sequence;
}

const STATUS_LABEL: Record<string, string> = {
  planned: 'Not started',
  in_progress: 'Running',
  paused: 'Paused',
  completed: 'Completed',
  cancelled: 'Cancelled',
};

type Mode = null | 'pause' | 'output' | 'downtime' | 'docs' | 'complete';

function TaskCard(props: { task: WorkOrder; reasons: Reason[]; onChanged: (wo: WorkOrder) => void; onStale: (msg: string) => void }) {
  const t = props.task;
  const [mode, setMode] = useState<Mode>(null);
  const action = useAction();
  const downtimeReasons = props.reasons.filter((r) => r.kind === 'downtime' && r.active);
  const scrapReasons = props.reasons.filter((r) => r.kind === 'scrap' && r.active);
  const pausedLabel = props.reasons.find((r) => r.code === t.paused_reason)?.label ?? t.paused_reason;
  const done = t.good_quantity;
  const share = t.quantity > 0 ? Math.min(1, done / t.quantity) : 0;
  const titleId = `task-${t.id}`;

  // Output adds up (the server caps it at the quantity), so it is sent without If-Match: another
  // tablet's report in between is no reason to refuse it. Its Idempotency-Key makes a retry after a
  // lost answer count once. Every other action is on the version the card shows.
  const act = (verb: string, body?: unknown, once?: string) =>
    action.run(async () => {
      try {
        const path = `/api/work-orders/${t.id}/${verb}`;
        const wo = once ? await api.postOnce<WorkOrder>(path, body, once) : await api.post<WorkOrder>(path, body ?? {}, t.version);
        props.onChanged(wo);
        setMode(null);
      } catch (e) {
        if (e instanceof ApiError && e.status === 409 && e.code === 'stale_version') {
          setMode(null);
          props.onStale(describe(e));
          return;
        }
        throw e;
      }
    });

  return (
    <article className={`task status-${t.status}`} aria-labelledby={titleId} data-wo={t.id}>
      <header className="task-head">
        <h2 id={titleId}>
          {t.product_name} <span className="muted">· {t.order_number}</span>
        </h2>
        <span className={`badge s-${t.status}`}>{STATUS_LABEL[t.status] ?? t.status}</span>
      </header>
      <p className="task-meta">
        {t.line_code} · {t.stage} · {t.work_date} shift {t.shift} · #{t.sequence}
      </p>
      {t.status === 'paused' && pausedLabel ? <p className="notice warn">Paused: {pausedLabel}</p> : null}
      <div className="progress" aria-hidden="true">
        <div className={`progress-bar w${Math.round(share * 20) * 5}`} />
      </div>
      <p className="task-counts">
        <strong>{done}</strong> good of {t.quantity} planned · <strong>{t.scrap_quantity}</strong> scrap
      </p>
      <Message error={action.error} />

      <div className="task-actions">
        {t.status === 'planned' && (
          <button type="button" className="btn big primary" disabled={action.busy} onClick={() => void act('start')}>
            Start
          </button>
        )}
        {t.status === 'in_progress' && (
          <>
            <button type="button" className="btn big" aria-expanded={mode === 'output'} onClick={() => setMode(mode === 'output' ? null : 'output')}>
              Report output
            </button>
            <button type="button" className="btn big warn" aria-expanded={mode === 'pause'} onClick={() => setMode(mode === 'pause' ? null : 'pause')}>
              Pause
            </button>
            <button type="button" className="btn big" aria-expanded={mode === 'downtime'} onClick={() => setMode(mode === 'downtime' ? null : 'downtime')}>
              Report a stop
            </button>
          </>
        )}
        {t.status === 'paused' && (
          <button type="button" className="btn big primary" disabled={action.busy} onClick={() => void act('resume')}>
            Resume
          </button>
        )}
        {(t.status === 'in_progress' || t.status === 'paused') && (
          <button type="button" className="btn big" aria-expanded={mode === 'complete'} onClick={() => setMode(mode === 'complete' ? null : 'complete')}>
            Complete
          </button>
        )}
        <button type="button" className="btn big ghost" aria-expanded={mode === 'docs'} onClick={() => setMode(mode === 'docs' ? null : 'docs')}>
          Instructions
        </button>
      </div>

      {mode === 'pause' && <PauseForm reasons={downtimeReasons} busy={action.busy} onSubmit={(b) => void act('pause', b)} onCancel={() => setMode(null)} />}
      {mode === 'output' && <OutputForm reasons={scrapReasons} busy={action.busy} onSubmit={(b, key) => void act('output', b, key)} onCancel={() => setMode(null)} />}
      {mode === 'downtime' && <DowntimeForm reasons={downtimeReasons} busy={action.busy} onSubmit={(b) => void act('downtime', b)} onCancel={() => setMode(null)} />}
      {mode === 'complete' && (
        <div className="panel" role="group" aria-label="Confirm completion">
          <p>
            Complete this task with {done} good of {t.quantity}? Report any last output first.
          </p>
          <div className="task-actions">
            <button type="button" className="btn big primary" disabled={action.busy} onClick={() => void act('complete')}>
              Yes, complete
            </button>
            <button type="button" className="btn big ghost" onClick={() => setMode(null)}>
              Cancel
            </button>
          </div>
        </div>
      )}
      {mode === 'docs' && <Documents task={t} />}
    </article>
  );
}

function ReasonPicker(props: { reasons: Reason[]; value: string; onChange: (v: string) => void; legend: string; name: string }) {
  if (props.reasons.length === 0) return <p className="notice warn">No reasons are defined; ask a manager.</p>;
  return (
    <fieldset className="reasons">
      <legend>{props.legend}</legend>
      {props.reasons.map((r) => (
        <label key={r.id} className={`reason ${props.value === r.code ? 'on' : ''}`}>
          <input type="radio" name={props.name} value={r.code} checked={props.value === r.code} onChange={() => props.onChange(r.code)} />
          {r.label}
        </label>
      ))}
    </fieldset>
  );
}

function PauseForm(props: { reasons: Reason[]; busy: boolean; onSubmit: (b: { reason_code: string; note?: string }) => void; onCancel: () => void }) {
  const [reason, setReason] = useState('');
  const [note, setNote] = useState('');
  const submit = (e: FormEvent) => {
    e.preventDefault();
    props.onSubmit(note.trim() ? { reason_code: reason, note: note.trim() } : { reason_code: reason });
  };
  return (
    <form className="panel" onSubmit={submit} aria-label="Pause with a reason">
      <ReasonPicker reasons={props.reasons} value={reason} onChange={setReason} legend="Why is the line stopping?" name="pause-reason" />
      <label className="field">
        <span>Note (optional)</span>
        <input value={note} onChange={(e) => setNote(e.target.value)} maxLength={500} />
      </label>
      <div className="task-actions">
        <button type="submit" className="btn big warn" disabled={props.busy || !reason}>
          Pause now
        </button>
        <button type="button" className="btn big ghost" onClick={props.onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}

function Stepper(props: { label: string; value: number; onChange: (n: number) => void; name: string }) {
  return (
    <div className="stepper" role="group" aria-label={props.label}>
      <label>
        <span>{props.label}</span>
        <input
          name={props.name}
          type="number"
          inputMode="numeric"
          min={0}
          value={Number.isFinite(props.value) ? props.value : 0}
          onChange={(e) => props.onChange(Math.max(0, Math.floor(Number(e.target.value) || 0)))}
        />
      </label>
      <button type="button" className="btn big" aria-label={`${props.label}: minus 10`} onClick={() => props.onChange(Math.max(0, props.value - 10))}>
        −10
      </button>
      <button type="button" className="btn big" aria-label={`${props.label}: plus 10`} onClick={() => props.onChange(props.value + 10)}>
        +10
      </button>
    </div>
  );
}

function OutputForm(props: {
  reasons: Reason[];
  busy: boolean;
  onSubmit: (b: { good: number; scrap: number; scrap_reason?: string }, idempotencyKey: string) => void;
  onCancel: () => void;
}) {
  const [good, setGood] = useState(0);
  const [scrap, setScrap] = useState(0);
  const [reason, setReason] = useState('');
  // One key per report: tapping again after an error resends the same report under the same key
  // (counted once); changing a number makes it a new report with a new key.
  const [key, setKey] = useState(newIdempotencyKey);
  const changing =
    <T,>(set: (v: T) => void) =>
    (v: T) => {
      set(v);
      setKey(newIdempotencyKey());
    };
  const submit = (e: FormEvent) => {
    e.preventDefault();
    props.onSubmit(scrap > 0 ? { good, scrap, scrap_reason: reason } : { good, scrap }, key);
  };
  return (
    <form className="panel" onSubmit={submit} aria-label="Report output">
      <Stepper label="Good units" name="good" value={good} onChange={changing(setGood)} />
      <Stepper label="Scrap units" name="scrap" value={scrap} onChange={changing(setScrap)} />
      {scrap > 0 && <ReasonPicker reasons={props.reasons} value={reason} onChange={changing(setReason)} legend="Scrap reason" name="scrap-reason" />}
      <div className="task-actions">
        <button type="submit" className="btn big primary" disabled={props.busy || good + scrap === 0 || (scrap > 0 && !reason)}>
          Report {good} good, {scrap} scrap
        </button>
        <button type="button" className="btn big ghost" onClick={props.onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}

function hhmm(d: Date): string {
  return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
}

function todayAt(time: string): string {
  const [h, m] = time.split(':').map(Number);
  const d = new Date();
  d.setHours(h, m, 0, 0);
  return d.toISOString();
}

function DowntimeForm(props: {
  reasons: Reason[];
  busy: boolean;
  onSubmit: (b: { reason_code: string; start: string; end: string; note?: string }) => void;
  onCancel: () => void;
}) {
  const now = new Date();
  const [start, setStart] = useState(hhmm(new Date(now.getTime() - 15 * 60_000)));
  const [end, setEnd] = useState(hhmm(new Date(now.getTime() - 5 * 60_000)));
  const [reason, setReason] = useState('');
  const submit = (e: FormEvent) => {
    e.preventDefault();
    props.onSubmit({ reason_code: reason, start: todayAt(start), end: todayAt(end) });
  };
  return (
    <form className="panel" onSubmit={submit} aria-label="Report a stop that already ended">
      <div className="row">
        <label className="field">
          <span>Stopped at (today)</span>
          <input type="time" required value={start} onChange={(e) => setStart(e.target.value)} />
        </label>
        <label className="field">
          <span>Running again at</span>
          <input type="time" required value={end} onChange={(e) => setEnd(e.target.value)} />
        </label>
      </div>
      <ReasonPicker reasons={props.reasons} value={reason} onChange={setReason} legend="Reason" name="downtime-reason" />
      <div className="task-actions">
        <button type="submit" className="btn big primary" disabled={props.busy || !reason}>
          Report stop
        </button>
        <button type="button" className="btn big ghost" onClick={props.onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}

/** The documents attached to the work order, its order and its line. */
function Documents(props: { task: WorkOrder }) {
  const t = props.task;
  const docs = useAsync(async () => {
    const owners: [string, string][] = [
      ['work_order', t.id],
      ['order', t.order_id],
      ['line', t.line_id],
    ];
    const lists = await Promise.all(
      owners.map(([type, id]) =>
        api.get<DocumentMeta[]>(`/api/documents?owner_type=${type}&owner_id=${encodeURIComponent(id)}`).catch((e) => {
          if (e instanceof ApiError && (e.status === 404 || e.status === 403)) return [] as DocumentMeta[];
          throw e;
        }),
      ),
    );
    return lists.flat().filter((d) => d.kind !== 'report');
  }, [t.id]);
  const open = useAction();
  return (
    <div className="panel docs" role="region" aria-label="Work instructions and documents">
      <Loaded state={docs} what="documents" isEmpty={(d) => d.length === 0} empty="No work instructions are attached to this task.">
        {(list) => (
          <ul className="doc-list">
            {list.map((d) => (
              <li key={d.id}>
                <button type="button" className="btn big ghost doc" onClick={() => void open.run(() => download(d))}>
                  <span>{d.name}</span>
                  <small>
                    {d.kind.replace('_', ' ')} · {Math.ceil(d.size / 1024)} KB · {fmtTime(d.created_at)}
                  </small>
                </button>
              </li>
            ))}
          </ul>
        )}
      </Loaded>
      <Message error={open.error} />
    </div>
  );
}

