// Manager lists: orders, lines, products, documents, alert rules — each with loading, empty and
// error states and the create form it needs most.
import { useState, type FormEvent } from 'react';
import { api, qs } from '../api/client';
import { auth } from '../auth/session';
import { problemFrom } from '../api/problem';
import { Loaded, Message, PageTitle, useAction, useAsync, fmtTime, today, addDays } from '../ui/kit';
import { download } from '../api/download';
import { KINDS, LineEditor, ProductEditor, shiftSpan } from './MasterEdit';
import type { DocumentMeta, Line, Order, OrderPage, Product, Reason, Rule, WorkOrder } from '../api/types';

const ORDER_STATUSES = ['', 'new', 'planned', 'in_progress', 'at_risk', 'done', 'cancelled'] as const;

export function Orders() {
  const [status, setStatus] = useState('');
  const [pages, setPages] = useState<string[]>([]);
  const cursor = pages[pages.length - 1];
  const orders = useAsync(() => api.get<OrderPage>(`/api/orders${qs({ status, cursor, limit: 25 })}`), [status, cursor]);
  const products = useAsync(() => api.get<Product[]>('/api/products'), []);
  const [selected, setSelected] = useState<Order | null>(null);
  return (
    <>
      <PageTitle>Orders</PageTitle>
      <div className="toolbar">
        <label className="inline-field">
          <span>Status</span>
          <select
            value={status}
            onChange={(e) => {
              setStatus(e.target.value);
              setPages([]);
            }}
          >
            {ORDER_STATUSES.map((s) => (
              <option key={s} value={s}>
                {s ? s.replace('_', ' ') : 'All'}
              </option>
            ))}
          </select>
        </label>
      </div>
      <Loaded state={orders} what="orders" isEmpty={(p) => p.items.length === 0} empty="No orders match.">
        {(p) => (
          <>
            <div className="table-wrap">
              <table className="list">
                <thead>
                  <tr>
                    <th scope="col">Number</th>
                    <th scope="col">Customer</th>
                    <th scope="col">Product</th>
                    <th scope="col">Quantity</th>
                    <th scope="col">Done</th>
                    <th scope="col">Due</th>
                    <th scope="col">Priority</th>
                    <th scope="col">Status</th>
                  </tr>
                </thead>
                <tbody>
                  {p.items.map((o) => (
                    <tr key={o.id} className={selected?.id === o.id ? 'sel' : ''}>
                      <td>
                        <button type="button" className="linkish" onClick={() => setSelected(o)}>
                          {o.number}
                        </button>
                      </td>
                      <td>{o.customer}</td>
                      <td>{o.product_sku}</td>
                      <td className="num">{o.quantity}</td>
                      <td className="num">{o.progress.completed_quantity}</td>
                      <td>{o.due_date}</td>
                      <td>{o.priority}</td>
                      <td>
                        <span className={`badge o-${o.status}`}>{o.status.replace('_', ' ')}</span>
                        {o.progress.risk ? <small className="risk"> {o.progress.risk}</small> : null}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
            <div className="pager">
              <button type="button" className="btn" disabled={pages.length === 0} onClick={() => setPages(pages.slice(0, -1))}>
                Previous
              </button>
              <button type="button" className="btn" disabled={!p.next_cursor} onClick={() => p.next_cursor && setPages([...pages, p.next_cursor])}>
                Next
              </button>
            </div>
          </>
        )}
      </Loaded>
      {selected ? <OrderDetail key={selected.id} order={selected} onChanged={orders.reload} /> : null}
      <NewOrderForm products={products.data ?? []} onCreated={orders.reload} />
    </>
  );
}

function OrderDetail(props: { order: Order; onChanged: () => void }) {
  const o = props.order;
  const wos = useAsync(() => api.get<WorkOrder[]>(`/api/work-orders${qs({ order_id: o.id, from: addDays(today(), -30), to: addDays(today(), 30) })}`), [o.id]);
  const lines = useAsync(() => api.get<Line[]>('/api/lines'), []);
  const add = useAction();
  const [lineId, setLineId] = useState('');
  const [date, setDate] = useState(today(1));
  const [shift, setShift] = useState('');
  const [qty, setQty] = useState(o.quantity);
  const line = lines.data?.find((l) => l.id === lineId);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    void add.run(async () => {
      await api.post<WorkOrder>('/api/work-orders', { order_id: o.id, line_id: lineId, work_date: date, shift, quantity: qty });
      wos.reload();
      props.onChanged();
      return 'Work order scheduled as a draft. Publish the schedule to send it to the line.';
    });
  };
  return (
    <section className="card" aria-labelledby="od-h">
      <h2 id="od-h">
        Order {o.number} · {o.customer}
      </h2>
      <p className="muted">
        {o.product_sku} × {o.quantity}, due {o.due_date}. {o.progress.projected_completion ? `Projected completion ${fmtTime(o.progress.projected_completion)}.` : ''}
      </p>
      <OrderEdit order={o} onChanged={props.onChanged} />
      <h3>Work orders</h3>
      <Loaded state={wos} what="work orders" isEmpty={(l) => l.length === 0} empty="Not scheduled yet.">
        {(list) => (
          <ul className="plain">
            {list.map((w) => (
              <li key={w.id}>
                {w.work_date} · {w.line_code} shift {w.shift} · {w.stage} · {w.good_quantity}/{w.quantity} · {w.status.replace('_', ' ')}
              </li>
            ))}
          </ul>
        )}
      </Loaded>
      <h3>Schedule a work order</h3>
      <form onSubmit={submit} className="row">
        <label className="field">
          <span>Line</span>
          <select required value={lineId} onChange={(e) => { setLineId(e.target.value); setShift(''); }}>
            <option value="">Choose…</option>
            {(lines.data ?? []).map((l) => (
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
          <select required value={shift} onChange={(e) => setShift(e.target.value)}>
            <option value="">Choose…</option>
            {(line?.shifts ?? []).map((s) => (
              <option key={s.name} value={s.name}>
                {s.name} ({s.start})
              </option>
            ))}
          </select>
        </label>
        <label className="field">
          <span>Quantity</span>
          <input type="number" min={1} required value={qty} onChange={(e) => setQty(Number(e.target.value))} />
        </label>
        <button type="submit" className="btn primary" disabled={add.busy}>
          Schedule
        </button>
      </form>
      <Message error={add.error} ok={add.ok} />
    </section>
  );
}

function OrderEdit(props: { order: Order; onChanged: () => void }) {
  const o = props.order;
  const [quantity, setQuantity] = useState(o.quantity);
  const [due, setDue] = useState(o.due_date);
  const [priority, setPriority] = useState<string>(o.priority);
  const [version, setVersion] = useState(o.version);
  const [confirm, setConfirm] = useState(false);
  const action = useAction();
  const closed = o.status === 'cancelled' || o.status === 'done';
  const save = (e: FormEvent) => {
    e.preventDefault();
    void action.run(async () => {
      const u = await api.patch<Order>(`/api/orders/${o.id}`, { quantity, due_date: due, priority }, version);
      setVersion(u.version);
      props.onChanged();
      return `Order ${u.number} saved.`;
    });
  };
  const cancel = () =>
    void action.run(async () => {
      const u = await api.post<Order>(`/api/orders/${o.id}/cancel`, {}, version);
      setVersion(u.version);
      props.onChanged();
      setConfirm(false);
      return `Order ${u.number} cancelled.`;
    });
  if (closed) return <p className="muted">This order is {o.status} and can no longer be changed.</p>;
  return (
    <>
      <form onSubmit={save} className="row" aria-label={`Edit order ${o.number}`}>
        <OrderFields
          quantity={quantity}
          setQuantity={setQuantity}
          due={due}
          setDue={setDue}
          priority={priority}
          setPriority={setPriority}
        />
        <button type="submit" className="btn primary" disabled={action.busy}>
          Save order
        </button>
        {confirm ? (
          <>
            <button type="button" className="btn danger" disabled={action.busy} onClick={cancel}>
              Yes, cancel the order
            </button>
            <button type="button" className="btn ghost" onClick={() => setConfirm(false)}>
              Keep it
            </button>
          </>
        ) : (
          <button type="button" className="btn danger" onClick={() => setConfirm(true)}>
            Cancel order…
          </button>
        )}
      </form>
      <Message error={action.error} ok={action.ok} />
    </>
  );
}

function NewOrderForm(props: { products: Product[]; onCreated: () => void }) {
  const [number, setNumber] = useState('');
  const [customer, setCustomer] = useState('');
  const [productId, setProductId] = useState('');
  const [quantity, setQuantity] = useState(100);
  const [due, setDue] = useState(today(7));
  const [priority, setPriority] = useState('normal');
  const action = useAction();
  const submit = (e: FormEvent) => {
    e.preventDefault();
    void action.run(async () => {
      const o = await api.post<Order>('/api/orders', { number, customer, product_id: productId, quantity, due_date: due, priority });
      props.onCreated();
      setNumber('');
      return `Order ${o.number} created.`;
    });
  };
  return (
    <section className="card" aria-labelledby="no-h">
      <h2 id="no-h">New order</h2>
      <form onSubmit={submit} className="row">
        <label className="field">
          <span>Number</span>
          <input required value={number} onChange={(e) => setNumber(e.target.value)} />
        </label>
        <label className="field">
          <span>Customer</span>
          <input required value={customer} onChange={(e) => setCustomer(e.target.value)} />
        </label>
        <label className="field">
          <span>Product</span>
          <select required value={productId} onChange={(e) => setProductId(e.target.value)}>
            <option value="">Choose…</option>
            {props.products.map((p) => (
              <option key={p.id} value={p.id}>
                {p.sku} — {p.name}
              </option>
            ))}
          </select>
        </label>
        <OrderFields
          quantity={quantity}
          setQuantity={setQuantity}
          due={due}
          setDue={setDue}
          priority={priority}
          setPriority={setPriority}
        />
        <button type="submit" className="btn primary" disabled={action.busy}>
          Create order
        </button>
      </form>
      <Message error={action.error} ok={action.ok} />
    </section>
  );
}

const SHIFT_PRESETS: Record<string, { name: string; start: string; minutes: number; break_minutes: number }[]> = {
  '1': [{ name: 'A', start: '08:00', minutes: 480, break_minutes: 30 }],
  '2': [
    { name: 'A', start: '06:00', minutes: 480, break_minutes: 30 },
    { name: 'B', start: '14:00', minutes: 480, break_minutes: 30 },
  ],
  '3': [
    { name: 'A', start: '06:00', minutes: 480, break_minutes: 30 },
    { name: 'B', start: '14:00', minutes: 480, break_minutes: 30 },
    { name: 'C', start: '22:00', minutes: 480, break_minutes: 30 },
  ],
};

export function Lines() {
  const lines = useAsync(() => api.get<Line[]>('/api/lines'), []);
  const action = useAction();
  const [code, setCode] = useState('');
  const [name, setName] = useState('');
  const [kind, setKind] = useState('SMT');
  const [shifts, setShifts] = useState('2');
  const [editing, setEditing] = useState<string | null>(null);
  const closeEditor = (id: string, message?: string) => {
    setEditing(null);
    if (message) {
      action.setError(null);
      action.setOk(message);
      lines.reload();
    }
    window.setTimeout(() => document.getElementById(`edit-line-${id}`)?.focus(), 0);
  };
  const editingLine = editing ? lines.data?.find((l) => l.id === editing) : undefined;
  const create = (e: FormEvent) => {
    e.preventDefault();
    void action.run(async () => {
      const l = await api.post<Line>('/api/lines', { code: code.trim().toUpperCase(), name, kind, shifts: SHIFT_PRESETS[shifts] });
      lines.reload();
      setCode('');
      setName('');
      return `Line ${l.code} created. Use Edit to assign its leaders (an admin gives users the LINE_LEADER role).`;
    });
  };
  const toggle = (l: Line) =>
    void action.run(async () => {
      await api.patch<Line>(`/api/lines/${l.id}`, { active: !l.active }, l.version);
      lines.reload();
      return `${l.code} is now ${l.active ? 'inactive' : 'active'}.`;
    });
  return (
    <>
      <PageTitle>Lines</PageTitle>
      <Message error={action.error} ok={action.ok} />
      <Loaded state={lines} what="lines" isEmpty={(l) => l.length === 0} empty="No lines yet.">
        {(ls) => (
          <div className="table-wrap">
            <table className="list">
              <thead>
                <tr>
                  <th scope="col">Code</th>
                  <th scope="col">Name</th>
                  <th scope="col">Kind</th>
                  <th scope="col">Shifts</th>
                  <th scope="col">Leaders</th>
                  <th scope="col">Active</th>
                  <th scope="col">
                    <span className="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {ls.map((l) => (
                  <tr key={l.id} className={editing === l.id ? 'sel' : ''} data-line={l.code}>
                    <td className="nowrap">{l.code}</td>
                    <td>{l.name}</td>
                    <td>{l.kind}</td>
                    <td>
                      {l.shifts.map((s, i) => (
                        <span key={s.name} className="nowrap">
                          {shiftSpan(s)}
                          {i < l.shifts.length - 1 ? ', ' : ''}
                        </span>
                      ))}
                    </td>
                    <td className="leaders-cell">
                      {l.leaders.length === 0 ? (
                        <span className="muted">None</span>
                      ) : (
                        <ul className="bare">
                          {l.leaders.map((x) => (
                            <li key={x.id}>
                              {x.name} <span className="muted">{x.email}</span>
                            </li>
                          ))}
                        </ul>
                      )}
                    </td>
                    <td>{l.active ? 'yes' : 'no'}</td>
                    <td className="actions-cell">
                      <div className="button-row tight">
                        <button
                          type="button"
                          className="btn"
                          id={`edit-line-${l.id}`}
                          aria-expanded={editing === l.id}
                          aria-controls={editing === l.id ? 'line-editor' : undefined}
                          onClick={() => {
                            action.setError(null);
                            action.setOk(null);
                            setEditing(editing === l.id ? null : l.id);
                          }}
                        >
                          Edit<span className="sr-only"> {l.code}</span>
                        </button>
                        <button type="button" className="btn" disabled={action.busy} onClick={() => toggle(l)}>
                          {l.active ? 'Deactivate' : 'Activate'}
                          <span className="sr-only"> {l.code}</span>
                        </button>
                      </div>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Loaded>
      {editingLine ? (
        <div id="line-editor">
          <LineEditor
            key={editingLine.id}
            line={editingLine}
            onSaved={(m) => closeEditor(editingLine.id, m)}
            onCancel={() => closeEditor(editingLine.id)}
            onChanged={lines.reload}
          />
        </div>
      ) : null}
      <section className="card" aria-labelledby="nl-h">
        <h2 id="nl-h">New line</h2>
        <form onSubmit={create} className="row">
          <label className="field">
            <span>Code (e.g. SMT-3)</span>
            <input required value={code} onChange={(e) => setCode(e.target.value)} />
          </label>
          <label className="field">
            <span>Name</span>
            <input required value={name} onChange={(e) => setName(e.target.value)} />
          </label>
          <label className="field">
            <span>Kind</span>
            <select value={kind} onChange={(e) => setKind(e.target.value)}>
              {KINDS.map((k) => (
                <option key={k}>{k}</option>
              ))}
            </select>
          </label>
          <label className="field">
            <span>Shifts (8 h, 30 min breaks)</span>
            <select value={shifts} onChange={(e) => setShifts(e.target.value)}>
              <option value="1">1 shift (08:00)</option>
              <option value="2">2 shifts (06:00, 14:00)</option>
              <option value="3">3 shifts (06:00, 14:00, 22:00)</option>
            </select>
          </label>
          <button type="submit" className="btn primary" disabled={action.busy}>
            Create line
          </button>
        </form>
      </section>
    </>
  );
}

export function Products() {
  const products = useAsync(() => api.get<Product[]>('/api/products'), []);
  const [sku, setSku] = useState('');
  const [name, setName] = useState('');
  const [cycles, setCycles] = useState<Record<string, string>>({ SMT: '', DIP: '', TEST: '', ASSEMBLY: '' });
  const action = useAction();
  const saved = useAction();
  const [editing, setEditing] = useState<string | null>(null);
  const closeEditor = (id: string, message?: string) => {
    setEditing(null);
    if (message) {
      saved.setError(null);
      saved.setOk(message);
      products.reload();
    }
    window.setTimeout(() => document.getElementById(`edit-product-${id}`)?.focus(), 0);
  };
  const editingProduct = editing ? products.data?.find((p) => p.id === editing) : undefined;
  const create = (e: FormEvent) => {
    e.preventDefault();
    void action.run(async () => {
      const ideal: Record<string, number> = {};
      for (const k of KINDS) if (cycles[k].trim()) ideal[k] = Number(cycles[k]);
      const p = await api.post<Product>('/api/products', { sku, name, ideal_cycle_seconds: ideal });
      products.reload();
      setSku('');
      setName('');
      return `Product ${p.sku} created.`;
    });
  };
  const form = (
    <section className="card" aria-labelledby="np-h">
      <h2 id="np-h">New product</h2>
      <form onSubmit={create} className="row">
        <label className="field">
          <span>SKU</span>
          <input required value={sku} onChange={(e) => setSku(e.target.value)} />
        </label>
        <label className="field">
          <span>Name</span>
          <input required value={name} onChange={(e) => setName(e.target.value)} />
        </label>
        {KINDS.map((k) => (
          <label className="field" key={k}>
            <span>{k} seconds per unit</span>
            <input type="number" min={0} step="0.1" value={cycles[k]} onChange={(e) => setCycles({ ...cycles, [k]: e.target.value })} />
          </label>
        ))}
        <button type="submit" className="btn primary" disabled={action.busy}>
          Create product
        </button>
      </form>
      <Message error={action.error} ok={action.ok} />
    </section>
  );
  return (
    <>
      <PageTitle>Products</PageTitle>
      <Message error={saved.error} ok={saved.ok} />
      <Loaded state={products} what="products" isEmpty={(l) => l.length === 0} empty="No products yet.">
        {(ps) => (
          <div className="table-wrap">
            <table className="list">
              <thead>
                <tr>
                  <th scope="col">SKU</th>
                  <th scope="col">Name</th>
                  <th scope="col">Ideal cycle time per stage</th>
                  <th scope="col">
                    <span className="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {ps.map((p) => (
                  <tr key={p.id} className={editing === p.id ? 'sel' : ''}>
                    <td>{p.sku}</td>
                    <td>{p.name}</td>
                    <td>
                      {Object.entries(p.ideal_cycle_seconds)
                        .map(([k, v]) => `${k} ${v} s`)
                        .join(' · ')}
                    </td>
                    <td>
                      <button
                        type="button"
                        className="btn"
                        id={`edit-product-${p.id}`}
                        aria-expanded={editing === p.id}
                        aria-controls={editing === p.id ? 'product-editor' : undefined}
                        onClick={() => {
                          saved.setError(null);
                          saved.setOk(null);
                          setEditing(editing === p.id ? null : p.id);
                        }}
                      >
                        Edit<span className="sr-only"> {p.sku}</span>
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Loaded>
      {editingProduct ? (
        <div id="product-editor">
          <ProductEditor
            key={editingProduct.id}
            product={editingProduct}
            onSaved={(m) => closeEditor(editingProduct.id, m)}
            onCancel={() => closeEditor(editingProduct.id)}
            onChanged={products.reload}
          />
        </div>
      ) : null}
      {form}
    </>
  );
}

export function Documents() {
  const lines = useAsync(() => api.get<Line[]>('/api/lines'), []);
  const [lineId, setLineId] = useState('');
  const current = lineId || lines.data?.[0]?.id || '';
  const docs = useAsync(async () => (current ? api.get<DocumentMeta[]>(`/api/documents${qs({ owner_type: 'line', owner_id: current })}`) : []), [current]);
  const open = useAction();
  const upload = useAction();
  const [kind, setKind] = useState('instruction');
  const [file, setFile] = useState<File | null>(null);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (!file) return;
    void upload.run(async () => {
      const res = await auth.fetch(`/api/documents${qs({ owner_type: 'line', owner_id: current, kind, name: file.name })}`, {
        method: 'POST',
        body: file,
        headers: { 'content-type': file.type || 'application/octet-stream' },
      });
      if (!res.ok) throw await problemFrom(res);
      docs.reload();
      return `Uploaded ${file.name}.`;
    });
  };
  return (
    <>
      <PageTitle>Documents</PageTitle>
      <div className="toolbar">
        <label className="inline-field">
          <span>Line</span>
          <select value={current} onChange={(e) => setLineId(e.target.value)}>
            {(lines.data ?? []).map((l) => (
              <option key={l.id} value={l.id}>
                {l.code} — {l.name}
              </option>
            ))}
          </select>
        </label>
      </div>
      <Message error={open.error} />
      <Loaded state={docs} what="documents" isEmpty={(d) => d.length === 0} empty="No documents on this line.">
        {(ds) => (
          <div className="table-wrap">
            <table className="list">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Kind</th>
                  <th scope="col">Size</th>
                  <th scope="col">Added</th>
                </tr>
              </thead>
              <tbody>
                {ds.map((d) => (
                  <tr key={d.id}>
                    <td>
                      <button type="button" className="linkish" onClick={() => void open.run(() => download(d))}>
                        {d.name}
                      </button>
                    </td>
                    <td>{d.kind}</td>
                    <td className="num">{Math.ceil(d.size / 1024)} KB</td>
                    <td>{fmtTime(d.created_at)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Loaded>
      <section className="card" aria-labelledby="up-h">
        <h2 id="up-h">Attach a document to this line</h2>
        <form onSubmit={submit} className="row">
          <label className="field">
            <span>Kind</span>
            <select value={kind} onChange={(e) => setKind(e.target.value)}>
              <option value="instruction">Work instruction</option>
              <option value="bom">BOM</option>
              <option value="other">Other</option>
            </select>
          </label>
          <label className="field">
            <span>File (PDF, PNG, JPEG, CSV, text, XLSX, DOCX; at most 20 MiB)</span>
            <input type="file" required onChange={(e) => setFile(e.target.files?.[0] ?? null)} />
          </label>
          <button type="submit" className="btn primary" disabled={upload.busy || !file || !current}>
            Upload
          </button>
        </form>
        <Message error={upload.error} ok={upload.ok} />
      </section>
    </>
  );
}

const RULE_TEXT: Record<string, string> = {
  line_down: 'Line down longer than N minutes',
  scrap_rate: 'Scrap above N% of a shift',
  order_at_risk: 'Order at risk',
};

function RuleRow(props: {
  rule: Rule;
  line: string;
  busy: boolean;
  onToggle: () => void;
  run: (fn: () => Promise<string | null | void>) => Promise<boolean>;
  reload: () => void;
}) {
  const r = props.rule;
  const [threshold, setThreshold] = useState(r.threshold);
  const [confirm, setConfirm] = useState(false);
  const unit = r.kind === 'line_down' ? 'minutes' : r.kind === 'scrap_rate' ? 'percent' : null;
  return (
    <tr>
      <td>{RULE_TEXT[r.kind] ?? r.kind}</td>
      <td>
        {unit ? (
          <span className="inline-field">
            <input
              type="number"
              min={1}
              className="narrow-num"
              aria-label={`Threshold in ${unit} for “${RULE_TEXT[r.kind]}” on ${props.line}`}
              value={threshold}
              onChange={(e) => setThreshold(Number(e.target.value))}
            />
            {threshold !== r.threshold ? (
              <button
                type="button"
                className="btn"
                disabled={props.busy}
                onClick={() =>
                  void props.run(async () => {
                    await api.patch<Rule>(`/api/alert-rules/${r.id}`, { threshold }, r.version);
                    props.reload();
                    return 'Threshold saved.';
                  })
                }
              >
                Save
              </button>
            ) : null}
          </span>
        ) : (
          '—'
        )}
      </td>
      <td>{props.line}</td>
      <td>{r.enabled ? 'yes' : 'no'}</td>
      <td>
        <div className="button-row tight">
          <button type="button" className="btn" disabled={props.busy} onClick={props.onToggle}>
            {r.enabled ? 'Disable' : 'Enable'}
          </button>
          {confirm ? (
            <button
              type="button"
              className="btn danger"
              disabled={props.busy}
              onClick={() =>
                void props.run(async () => {
                  await api.del(`/api/alert-rules/${r.id}`);
                  props.reload();
                  return 'Rule deleted.';
                })
              }
            >
              Yes, delete
            </button>
          ) : (
            <button type="button" className="btn danger" onClick={() => setConfirm(true)}>
              Delete…
            </button>
          )}
        </div>
      </td>
    </tr>
  );
}

export function AlertRules() {
  const rules = useAsync(() => api.get<Rule[]>('/api/alert-rules'), []);
  const lines = useAsync(() => api.get<Line[]>('/api/lines'), []);
  const change = useAction();
  const [kind, setKind] = useState('line_down');
  const [threshold, setThreshold] = useState(30);
  const [lineId, setLineId] = useState('');
  const lineCode = (id: string | null | undefined) => (id ? (lines.data?.find((l) => l.id === id)?.code ?? id) : 'All lines');
  const toggle = (r: Rule) =>
    change.run(async () => {
      await api.patch<Rule>(`/api/alert-rules/${r.id}`, { enabled: !r.enabled }, r.version);
      rules.reload();
    });
  const create = (e: FormEvent) => {
    e.preventDefault();
    void change.run(async () => {
      await api.post<Rule>('/api/alert-rules', {
        kind,
        line_id: lineId || null,
        threshold: kind === 'order_at_risk' ? null : threshold,
      });
      rules.reload();
      return 'Rule created.';
    });
  };
  return (
    <>
      <PageTitle>Alert rules</PageTitle>
      <Message error={change.error} ok={change.ok} />
      <Loaded state={rules} what="alert rules" isEmpty={(r) => r.length === 0} empty="No alert rules.">
        {(rs) => (
          <div className="table-wrap">
            <table className="list">
              <thead>
                <tr>
                  <th scope="col">Rule</th>
                  <th scope="col">Threshold</th>
                  <th scope="col">Line</th>
                  <th scope="col">Enabled</th>
                  <th scope="col">
                    <span className="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {rs.map((r) => (
                  <RuleRow key={r.id + r.version} rule={r} line={lineCode(r.line_id)} busy={change.busy} onToggle={() => void toggle(r)} run={change.run} reload={rules.reload} />
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Loaded>
      <section className="card" aria-labelledby="nr-h">
        <h2 id="nr-h">New rule</h2>
        <form onSubmit={create} className="row">
          <label className="field">
            <span>Rule</span>
            <select value={kind} onChange={(e) => setKind(e.target.value)}>
              {Object.entries(RULE_TEXT).map(([k, v]) => (
                <option key={k} value={k}>
                  {v}
                </option>
              ))}
            </select>
          </label>
          {kind !== 'order_at_risk' && (
            <label className="field">
              <span>{kind === 'line_down' ? 'Minutes (1–1440)' : 'Percent (1–100)'}</span>
              <input type="number" min={1} required value={threshold} onChange={(e) => setThreshold(Number(e.target.value))} />
            </label>
          )}
          <label className="field">
            <span>Line</span>
            <select value={lineId} onChange={(e) => setLineId(e.target.value)}>
              <option value="">All lines</option>
              {(lines.data ?? []).map((l) => (
                <option key={l.id} value={l.id}>
                  {l.code}
                </option>
              ))}
            </select>
          </label>
          <button type="submit" className="btn primary" disabled={change.busy}>
            Add rule
          </button>
        </form>
      </section>
    </>
  );
}

export function Reasons() {
  const reasons = useAsync(() => api.get<Reason[]>('/api/reasons'), []);
  const [kind, setKind] = useState<'downtime' | 'scrap'>('downtime');
  const [code, setCode] = useState('');
  const [label, setLabel] = useState('');
  const action = useAction();
  const create = (e: FormEvent) => {
    e.preventDefault();
    void action.run(async () => {
      await api.post<Reason>('/api/reasons', { kind, code: code.trim().toUpperCase(), label });
      reasons.reload();
      setCode('');
      setLabel('');
      return 'Reason added; leaders see it at once.';
    });
  };
  const toggle = (r: Reason) =>
    void action.run(async () => {
      await api.patch<Reason>(`/api/reasons/${r.id}`, { active: !r.active }, r.version);
      reasons.reload();
    });
  return (
    <>
      <PageTitle>Reasons</PageTitle>
      <p className="muted">The downtime and scrap reasons line leaders choose from.</p>
      <Message error={action.error} ok={action.ok} />
      <Loaded state={reasons} what="reasons" isEmpty={(l) => l.length === 0} empty="No reasons yet.">
        {(rs) => (
          <div className="table-wrap">
            <table className="list">
              <thead>
                <tr>
                  <th scope="col">Kind</th>
                  <th scope="col">Code</th>
                  <th scope="col">Label</th>
                  <th scope="col">In use</th>
                  <th scope="col">
                    <span className="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {rs.map((r) => (
                  <tr key={r.id}>
                    <td>{r.kind}</td>
                    <td>
                      <code>{r.code}</code>
                    </td>
                    <td>{r.label}</td>
                    <td>{r.active ? 'yes' : 'no'}</td>
                    <td>
                      <button type="button" className="btn" disabled={action.busy} onClick={() => toggle(r)}>
                        {r.active ? 'Retire' : 'Use again'}
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Loaded>
      <section className="card" aria-labelledby="nrs-h">
        <h2 id="nrs-h">New reason</h2>
        <form onSubmit={create} className="row">
          <label className="field">
            <span>Kind</span>
            <select value={kind} onChange={(e) => setKind(e.target.value as 'downtime' | 'scrap')}>
              <option value="downtime">Downtime</option>
              <option value="scrap">Scrap</option>
            </select>
          </label>
          <label className="field">
            <span>Code (e.g. FEEDER_JAM)</span>
            <input required pattern="[A-Za-z0-9_]+" value={code} onChange={(e) => setCode(e.target.value)} />
          </label>
          <label className="field">
            <span>Label</span>
            <input required value={label} onChange={(e) => setLabel(e.target.value)} />
          </label>
          <button type="submit" className="btn primary" disabled={action.busy}>
            Add reason
          </button>
        </form>
      </section>
    </>
  );
}

/** Quantity, due date and priority: the fields an order is created and edited with. */
function OrderFields(p: {
  quantity: number;
  setQuantity: (n: number) => void;
  due: string;
  setDue: (d: string) => void;
  priority: string;
  setPriority: (p: string) => void;
}) {
  return (
    <>
      <label className="field">
        <span>Quantity</span>
        <input type="number" min={1} required value={p.quantity} onChange={(e) => p.setQuantity(Number(e.target.value))} />
      </label>
      <label className="field">
        <span>Due date</span>
        <input type="date" required value={p.due} onChange={(e) => p.setDue(e.target.value)} />
      </label>
      <label className="field">
        <span>Priority</span>
        <select value={p.priority} onChange={(e) => p.setPriority(e.target.value)}>
          {['low', 'normal', 'high', 'urgent'].map((v) => (
            <option key={v}>{v}</option>
          ))}
        </select>
      </label>
    </>
  );
}
