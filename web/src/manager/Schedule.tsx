// The schedule board: lines × days. Drag a planned or paused work order to another cell, or
// select it and use the form (keyboard and touch friendly); both send PATCH with If-Match.
import { useMemo, useState, type DragEvent, type FormEvent } from 'react';
import { api, qs } from '../api/client';
import { ApiError } from '../api/problem';
import { Loaded, Message, PageTitle, addDays, today, useAction, useAsync } from '../ui/kit';
import type { Line, Published, WorkOrder } from '../api/types';

const DAYS = 7;
const MOVABLE = new Set(['planned', 'paused']);

export default function Schedule() {
  const [from, setFrom] = useState(today());
  const to = addDays(from, DAYS - 1);
  const lines = useAsync(() => api.get<Line[]>('/api/lines'), []);
  const board = useAsync(() => api.get<WorkOrder[]>(`/api/work-orders${qs({ from, to })}`), [from]);
  const [selected, setSelected] = useState<string | null>(null);
  const move = useAction();
  const days = useMemo(() => Array.from({ length: DAYS }, (_, i) => addDays(from, i)), [from]);
  const chosen = board.data?.find((w) => w.id === selected) ?? null;

  const reschedule = (wo: WorkOrder, patch: { line_id?: string; work_date?: string; shift?: string }) =>
    move.run(async () => {
      try {
        const updated = await api.patch<WorkOrder>(`/api/work-orders/${wo.id}`, patch, wo.version);
        if (board.data) board.setData(board.data.map((w) => (w.id === wo.id ? updated : w)));
        board.reload();
        return `Moved ${wo.order_number} (${wo.product_sku}) to ${updated.line_code}, ${updated.work_date}, shift ${updated.shift}. Publish to notify the line leaders.`;
      } catch (e) {
        if (e instanceof ApiError && e.status === 409) board.reload();
        throw e;
      }
    });

  const onDrop = (e: DragEvent, line: Line, day: string) => {
    e.preventDefault();
    const id = e.dataTransfer.getData('text/plain');
    const wo = board.data?.find((w) => w.id === id);
    if (!wo || (wo.line_id === line.id && wo.work_date === day)) return;
    void reschedule(wo, { line_id: line.id, work_date: day });
  };

  return (
    <>
      <PageTitle>Schedule</PageTitle>
      <div className="toolbar">
        <button type="button" className="btn" onClick={() => setFrom(addDays(from, -DAYS))}>
          ← Previous week
        </button>
        <label className="inline-field">
          <span>From</span>
          <input type="date" value={from} onChange={(e) => e.target.value && setFrom(e.target.value)} />
        </label>
        <button type="button" className="btn" onClick={() => setFrom(addDays(from, DAYS))}>
          Next week →
        </button>
        <button type="button" className="btn ghost" onClick={() => setFrom(today())}>
          Today
        </button>
      </div>
      <Message error={move.error} ok={move.ok} />
      <Loaded state={lines} what="lines" isEmpty={(l) => l.length === 0} empty="No lines yet. Create a line first.">
        {(ls) => (
          <Loaded state={board} what="the schedule">
            {(wos) => (
              <div className="board-wrap">
                <table className="board">
                  <caption className="sr-only">
                    Work orders by line and day, {from} to {to}. Drag a planned or paused work order to another cell, or select it
                    and use the form below.
                  </caption>
                  <thead>
                    <tr>
                      <th scope="col">Line</th>
                      {days.map((d) => (
                        <th scope="col" key={d}>
                          {new Date(`${d}T12:00:00`).toLocaleDateString(undefined, { weekday: 'short', day: 'numeric', month: 'short' })}
                        </th>
                      ))}
                    </tr>
                  </thead>
                  <tbody>
                    {ls.map((l) => (
                      <tr key={l.id}>
                        <th scope="row">
                          {l.code}
                          <br />
                          <small className="muted">{l.kind}</small>
                        </th>
                        {days.map((d) => (
                          <td key={d} onDragOver={(e) => e.preventDefault()} onDrop={(e) => onDrop(e, l, d)} data-line={l.code} data-day={d}>
                            {wos
                              .filter((w) => w.line_id === l.id && w.work_date === d)
                              .map((w) => (
                                <button
                                  key={w.id}
                                  type="button"
                                  className={`chip s-${w.status} ${selected === w.id ? 'sel' : ''} ${w.published_at ? '' : 'draft'}`}
                                  draggable={MOVABLE.has(w.status)}
                                  data-wo={w.id}
                                  onDragStart={(e) => e.dataTransfer.setData('text/plain', w.id)}
                                  aria-pressed={selected === w.id}
                                  onClick={() => setSelected(selected === w.id ? null : w.id)}
                                >
                                  <span className="chip-top">
                                    {w.shift} · {w.order_number}
                                  </span>
                                  <span className="chip-sub">
                                    {w.product_sku} × {w.quantity} · {w.status.replace('_', ' ')}
                                    {w.published_at ? '' : ' · draft'}
                                  </span>
                                </button>
                              ))}
                          </td>
                        ))}
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )}
          </Loaded>
        )}
      </Loaded>
      {chosen ? (
        <MoveForm
          key={chosen.id + chosen.version}
          wo={chosen}
          lines={lines.data ?? []}
          busy={move.busy}
          onMove={(p) => void reschedule(chosen, p)}
          onCancel={() =>
            void move.run(async () => {
              try {
                await api.post<WorkOrder>(`/api/work-orders/${chosen.id}/cancel`, {}, chosen.version);
                return `Cancelled ${chosen.order_number} on ${chosen.line_code}, ${chosen.work_date}, shift ${chosen.shift}.`;
              } finally {
                board.reload();
              }
            })
          }
        />
      ) : null}
      <PublishForm from={from} to={to} onDone={board.reload} />
    </>
  );
}

function MoveForm(props: {
  wo: WorkOrder;
  lines: Line[];
  busy: boolean;
  onMove: (p: { line_id: string; work_date: string; shift: string }) => void;
  onCancel: () => void;
}) {
  const [confirming, setConfirming] = useState(false);
  const w = props.wo;
  const [lineId, setLineId] = useState(w.line_id);
  const [date, setDate] = useState(w.work_date);
  const [shift, setShift] = useState(w.shift);
  const line = props.lines.find((l) => l.id === lineId);
  const shifts = line?.shifts ?? [];
  const movable = MOVABLE.has(w.status);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    props.onMove({ line_id: lineId, work_date: date, shift });
  };
  return (
    <section className="card" aria-labelledby="move-h">
      <h2 id="move-h">
        Reschedule {w.order_number} · {w.product_name}
      </h2>
      <p className="muted">
        Now on {w.line_code}, {w.work_date}, shift {w.shift} ({w.status.replace('_', ' ')}). {movable ? '' : 'Only planned or paused work orders can be moved.'}
      </p>
      <form onSubmit={submit} className="row">
        <label className="field">
          <span>Line</span>
          <select value={lineId} onChange={(e) => setLineId(e.target.value)}>
            {props.lines.map((l) => (
              <option key={l.id} value={l.id}>
                {l.code} ({l.kind})
              </option>
            ))}
          </select>
        </label>
        <label className="field">
          <span>Date</span>
          <input type="date" required value={date} onChange={(e) => setDate(e.target.value)} />
        </label>
        <label className="field">
          <span>Shift</span>
          <select value={shift} onChange={(e) => setShift(e.target.value)}>
            {shifts.map((s) => (
              <option key={s.name} value={s.name}>
                {s.name} ({s.start})
              </option>
            ))}
            {shifts.some((s) => s.name === shift) ? null : <option value={shift}>{shift}</option>}
          </select>
        </label>
        <button type="submit" className="btn primary" disabled={props.busy || !movable}>
          Move work order
        </button>
      </form>
      {movable ? (
        <div className="button-row">
          {confirming ? (
            <>
              <span>Cancel this work order? Its plan is dropped; reported output stays.</span>
              <button type="button" className="btn danger" disabled={props.busy} onClick={props.onCancel}>
                Yes, cancel it
              </button>
              <button type="button" className="btn ghost" onClick={() => setConfirming(false)}>
                Keep it
              </button>
            </>
          ) : (
            <button type="button" className="btn danger" onClick={() => setConfirming(true)}>
              Cancel work order…
            </button>
          )}
        </div>
      ) : null}
    </section>
  );
}

function PublishForm(props: { from: string; to: string; onDone: () => void }) {
  const action = useAction();
  return (
    <section className="card" aria-labelledby="pub-h">
      <h2 id="pub-h">Publish</h2>
      <p>Publishing makes the drafts of this week visible on the shop floor and emails each affected line leader.</p>
      <Message error={action.error} ok={action.ok} />
      <button
        type="button"
        className="btn primary"
        disabled={action.busy}
        onClick={() =>
          void action.run(async () => {
            const r = await api.post<Published>('/api/schedule/publish', { from: props.from, to: props.to });
            props.onDone();
            return `Published ${r.published} work order(s); ${r.leaders_notified} line leader(s) notified.`;
          })
        }
      >
        Publish {props.from} to {props.to}
      </button>
    </section>
  );
}
