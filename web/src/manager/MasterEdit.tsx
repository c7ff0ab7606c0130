// Edit forms for the manager's master data: a line (name, shifts, leaders) and a product (name,
// ideal cycle times). Every write sends If-Match with the version the form was loaded from; a
// stale version reloads the latest one into the form and says so in plain words.
import { useEffect, useRef, useState, type FormEvent, type KeyboardEvent } from 'react';
import { api } from '../api/client';
import { ApiError } from '../api/problem';
import { Loaded, Message, useAction, useAsync } from '../ui/kit';
import type { Leader, Line, LinePatch, Product, ProductPatch } from '../api/types';
import { fromMinute, fromRows, hours, invalid, lengthOf, nextShiftName, rowKey, sameShifts, toMinute, toRows, type ShiftRow } from './shifts';

export { shiftSpan } from './shifts';

export const KINDS = ['SMT', 'DIP', 'TEST', 'ASSEMBLY'] as const;
const MAX_SHIFTS = 4;

function isStale(e: unknown): boolean {
  return e instanceof ApiError && e.status === 409 && e.code === 'stale_version';
}

/** The shift table: name, start, end, break; rows added and removed with buttons. */
function ShiftTable(props: { rows: ShiftRow[]; onChange: (rows: ShiftRow[]) => void; disabled: boolean }) {
  const { rows, onChange } = props;
  const [focusKey, setFocusKey] = useState<number | null>(null);
  const names = useRef(new Map<number, HTMLInputElement>());
  useEffect(() => {
    if (focusKey !== null) {
      names.current.get(focusKey)?.focus();
      setFocusKey(null);
    }
  }, [focusKey]);
  const set = (key: number, change: Partial<ShiftRow>) => onChange(rows.map((r) => (r.key === key ? { ...r, ...change } : r)));
  const add = () => {
    const last = rows[rows.length - 1];
    const start = last ? last.end : '06:00';
    const row: ShiftRow = { key: rowKey(), name: nextShiftName(rows), start, end: fromMinute((toMinute(start) ?? 0) + 480), breakMinutes: '30' };
    onChange([...rows, row]);
    setFocusKey(row.key);
  };
  const remove = (i: number) => {
    const rest = rows.filter((_, j) => j !== i);
    onChange(rest);
    const neighbour = rest[Math.min(i, rest.length - 1)];
    if (neighbour) setFocusKey(neighbour.key);
  };
  return (
    <fieldset className="shift-edit">
      <legend>Shifts (1 to 4, factory local time; an end before the start runs past midnight)</legend>
      <div className="table-wrap">
        <table className="list compact">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Start</th>
              <th scope="col">End</th>
              <th scope="col">Length</th>
              <th scope="col">Break (minutes)</th>
              <th scope="col">
                <span className="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r, i) => (
              <tr key={r.key}>
                <td>
                  <input
                    className="shift-name"
                    required
                    maxLength={16}
                    aria-label={`Shift ${i + 1} name`}
                    value={r.name}
                    ref={(el) => {
                      if (el) names.current.set(r.key, el);
                      else names.current.delete(r.key);
                    }}
                    onChange={(e) => set(r.key, { name: e.target.value })}
                  />
                </td>
                <td>
                  <input type="time" required aria-label={`Shift ${i + 1} start`} value={r.start} onChange={(e) => set(r.key, { start: e.target.value })} />
                </td>
                <td>
                  <input type="time" required aria-label={`Shift ${i + 1} end`} value={r.end} onChange={(e) => set(r.key, { end: e.target.value })} />
                </td>
                <td className="num">{hours(lengthOf(r.start, r.end))}</td>
                <td>
                  <input
                    type="number"
                    min={0}
                    step={1}
                    className="narrow-num"
                    aria-label={`Shift ${i + 1} break in minutes`}
                    value={r.breakMinutes}
                    onChange={(e) => set(r.key, { breakMinutes: e.target.value })}
                  />
                </td>
                <td>
                  <button type="button" className="btn ghost" disabled={props.disabled || rows.length <= 1} onClick={() => remove(i)}>
                    Remove<span className="sr-only"> shift {r.name || i + 1}</span>
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <button type="button" className="btn" disabled={props.disabled || rows.length >= MAX_SHIFTS} onClick={add}>
        Add a shift
      </button>
    </fieldset>
  );
}

// ---- line editor -------------------------------------------------------------------------------

/** Focuses the editor's heading when it opens; Escape closes it. */
function useEditorFocus(onCancel: () => void) {
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    heading.current?.focus();
    heading.current?.scrollIntoView({ block: 'nearest' });
  }, []);
  const onKeyDown = (e: KeyboardEvent) => {
    if (e.key === 'Escape') {
      e.preventDefault();
      onCancel();
    }
  };
  return { heading, onKeyDown };
}

export function LineEditor(props: { line: Line; onSaved: (message: string) => void; onCancel: () => void; onChanged: () => void }) {
  const [base, setBase] = useState(props.line);
  const [name, setName] = useState(props.line.name);
  const [rows, setRows] = useState(() => toRows(props.line.shifts));
  const [leaderIds, setLeaderIds] = useState(() => props.line.leaders.map((l) => l.id));
  const [partial, setPartial] = useState<string | null>(null);
  const candidates = useAsync(() => api.get<Leader[]>('/api/leaders'), []);
  const action = useAction();
  const { heading, onKeyDown } = useEditorFocus(props.onCancel);
  const id = base.id;

  const load = (l: Line) => {
    setBase(l);
    setName(l.name);
    setRows(toRows(l.shifts));
    setLeaderIds(l.leaders.map((x) => x.id));
  };

  const save = (e: FormEvent) => {
    e.preventDefault();
    setPartial(null);
    void action.run(async () => {
      const shifts = fromRows(rows);
      const patch: LinePatch = {};
      if (name.trim() !== base.name) patch.name = name.trim();
      if (!sameShifts(shifts, base.shifts)) patch.shifts = shifts;
      const wanted = [...new Set(leaderIds)].sort();
      const leadersChanged = wanted.join() !== base.leaders.map((l) => l.id).sort().join();
      if (patch.name === undefined && patch.shifts === undefined && !leadersChanged) return 'Nothing has changed.';
      let current = base;
      let patched = false;
      try {
        if (patch.name !== undefined || patch.shifts !== undefined) {
          current = await api.patch<Line>(`/api/lines/${id}`, patch, current.version);
          patched = true;
          setBase(current);
        }
        if (leadersChanged) current = await api.put<Line>(`/api/lines/${id}/leaders`, { user_ids: wanted }, current.version);
      } catch (err) {
        if (patched) setPartial('The name and shifts were saved; the leaders were not.');
        if (isStale(err)) {
          try {
            load(await api.get<Line>(`/api/lines/${id}`));
          } catch {
            /* the message below still applies */
          }
        }
        props.onChanged();
        throw err;
      }
      props.onSaved(`Line ${current.code} saved.`);
    });
  };

  const toggleLeader = (leaderId: string, on: boolean) =>
    setLeaderIds((ids) => (on ? [...ids.filter((x) => x !== leaderId), leaderId] : ids.filter((x) => x !== leaderId)));

  return (
    <section className="card editor" aria-labelledby="le-h" onKeyDown={onKeyDown}>
      <h2 id="le-h" tabIndex={-1} ref={heading}>
        Edit line {base.code} <span className="muted">({base.kind})</span>
      </h2>
      <form onSubmit={save} aria-label={`Edit line ${base.code}`}>
        <label className="field">
          <span>Name</span>
          <input required maxLength={100} value={name} onChange={(e) => setName(e.target.value)} />
        </label>
        <ShiftTable rows={rows} onChange={setRows} disabled={action.busy} />
        <Loaded
          state={candidates}
          what="line leaders"
          isEmpty={(c) => c.length === 0 && base.leaders.length === 0}
          empty="No user holds the LINE_LEADER role yet. An admin grants it on the Users page."
        >
          {(list) => {
            const gone = base.leaders.filter((l) => !list.some((c) => c.id === l.id));
            return (
              <fieldset className="checks leaders">
                <legend>Leaders (they see and run this line&apos;s published work)</legend>
                {[...list, ...gone].map((l) => (
                  <label key={l.id}>
                    <input type="checkbox" checked={leaderIds.includes(l.id)} onChange={(e) => toggleLeader(l.id, e.target.checked)} />
                    <span>
                      {l.name} <span className="muted">{l.email}</span>
                      {gone.includes(l) ? <small className="risk"> no longer an enabled line leader</small> : null}
                    </span>
                  </label>
                ))}
              </fieldset>
            );
          }}
        </Loaded>
        <div className="button-row">
          <button type="submit" className="btn primary" disabled={action.busy || (candidates.data === undefined && !candidates.error)}>
            Save line
          </button>
          <button type="button" className="btn ghost" onClick={props.onCancel}>
            Cancel
          </button>
        </div>
      </form>
      {partial ? <p className="notice warn">{partial}</p> : null}
      <Message error={action.error} ok={action.ok} />
    </section>
  );
}

// ---- product editor ----------------------------------------------------------------------------

function cycleFields(p: Product): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of KINDS) {
    const v = p.ideal_cycle_seconds[k];
    out[k] = v === undefined ? '' : String(v);
  }
  return out;
}

export function ProductEditor(props: { product: Product; onSaved: (message: string) => void; onCancel: () => void; onChanged: () => void }) {
  const [base, setBase] = useState(props.product);
  const [name, setName] = useState(props.product.name);
  const [cycles, setCycles] = useState(() => cycleFields(props.product));
  const action = useAction();
  const { heading, onKeyDown } = useEditorFocus(props.onCancel);

  const save = (e: FormEvent) => {
    e.preventDefault();
    void action.run(async () => {
      const ideal: Record<string, number> = {};
      for (const k of KINDS) {
        const raw = cycles[k].trim();
        if (!raw) continue;
        const v = Number(raw);
        if (!Number.isFinite(v) || v < 0.001 || v > 3600) throw invalid(`the ${k} cycle time must be 0.001 to 3600 seconds`);
        ideal[k] = v;
      }
      if (Object.keys(ideal).length === 0) throw invalid('give an ideal cycle time for at least one line kind');
      const patch: ProductPatch = {};
      if (name.trim() !== base.name) patch.name = name.trim();
      const before = base.ideal_cycle_seconds as Record<string, number>;
      const changed = KINDS.some((k) => ideal[k] !== before[k]);
      if (changed) patch.ideal_cycle_seconds = ideal;
      if (patch.name === undefined && !changed) return 'Nothing has changed.';
      try {
        const p = await api.patch<Product>(`/api/products/${base.id}`, patch, base.version);
        props.onSaved(`Product ${p.sku} saved.`);
      } catch (err) {
        if (isStale(err)) {
          try {
            const fresh = await api.get<Product>(`/api/products/${base.id}`);
            setBase(fresh);
            setName(fresh.name);
            setCycles(cycleFields(fresh));
          } catch {
            /* the message below still applies */
          }
        }
        props.onChanged();
        throw err;
      }
    });
  };

  return (
    <section className="card editor" aria-labelledby="pe-h" onKeyDown={onKeyDown}>
      <h2 id="pe-h" tabIndex={-1} ref={heading}>
        Edit product {base.sku}
      </h2>
      <form onSubmit={save} className="row" aria-label={`Edit product ${base.sku}`}>
        <label className="field">
          <span>Name</span>
          <input required maxLength={200} value={name} onChange={(e) => setName(e.target.value)} />
        </label>
        {KINDS.map((k) => (
          <label className="field" key={k}>
            <span>{k} seconds per unit</span>
            <input type="number" min={0.001} max={3600} step="any" value={cycles[k]} onChange={(e) => setCycles({ ...cycles, [k]: e.target.value })} />
          </label>
        ))}
        <div className="button-row tight">
          <button type="submit" className="btn primary" disabled={action.busy}>
            Save product
          </button>
          <button type="button" className="btn ghost" onClick={props.onCancel}>
            Cancel
          </button>
        </div>
      </form>
      <p className="muted">Leave a stage empty if the product does not pass through it. Work orders already scheduled keep their cycle time.</p>
      <Message error={action.error} ok={action.ok} />
    </section>
  );
}
