// The manager's dashboard: today's factory OEE and line states, the OEE trend with its three
// factors, output against plan, the downtime Pareto, orders at risk and live alerts.
import { useState } from 'react';
import { api, qs } from '../api/client';
import { Loaded, Message, PageTitle, pct, useAction, useAsync, fmtTime, addDays, Link } from '../ui/kit';
import { GroupedBars, LineChart, Pareto } from './charts';
import type { Alert, FactorySummary, Line, LineKpi, ParetoEntry } from '../api/types';

const DAYS = 14;

interface Point {
  period: string;
  planned: number;
  run: number;
  ideal: number;
  good: number;
  total: number;
  plan: number;
}

/** Adds the inputs of several lines per period, then divides (the server's roll-up rule). */
function rollUp(kpis: LineKpi[]): Point[] {
  const by = new Map<string, Point>();
  for (const k of kpis) {
    for (const b of k.buckets) {
      const p = by.get(b.period) ?? { period: b.period, planned: 0, run: 0, ideal: 0, good: 0, total: 0, plan: 0 };
      p.planned += b.planned_production_seconds;
      p.run += b.run_time_seconds;
      p.ideal += b.ideal_cycle_seconds_total;
      p.good += b.good_count;
      p.total += b.total_count;
      p.plan += b.planned_quantity;
      by.set(b.period, p);
    }
  }
  return [...by.values()].sort((a, b) => a.period.localeCompare(b.period));
}

const ratio = (a: number, b: number) => (b > 0 ? a / b : null);

export default function Dashboard() {
  const summary = useAsync(() => api.get<FactorySummary>('/api/kpi/summary'), [], 30_000);
  const lines = useAsync(() => api.get<Line[]>('/api/lines'), []);
  const [lineId, setLineId] = useState('');
  const date = summary.data?.date;
  const from = date ? addDays(date, -(DAYS - 1)) : undefined;

  const trend = useAsync(async () => {
    if (!date || !lines.data) return null;
    const chosen = lines.data.filter((l) => (lineId ? l.id === lineId : l.active));
    const kpis = await Promise.all(chosen.map((l) => api.get<LineKpi>(`/api/kpi/lines/${l.id}${qs({ from, to: date, group: 'day' })}`)));
    return rollUp(kpis);
  }, [date, lines.data, lineId]);

  const pareto = useAsync(async () => {
    if (!date) return null;
    return api.get<ParetoEntry[]>(`/api/kpi/downtime-pareto${qs({ from, to: date, line_id: lineId || undefined })}`);
  }, [date, lineId]);

  return (
    <>
      <PageTitle>Factory dashboard</PageTitle>
      <Loaded state={summary} what="today's summary">
        {(s) => (
          <>
            <section aria-labelledby="today-h" className="section">
              <h2 id="today-h">Today, {s.date}</h2>
              <div className="tiles">
                <Tile label="OEE" value={pct(s.factory.oee)} big />
                <Tile label="Availability" value={pct(s.factory.availability)} />
                <Tile label="Performance" value={pct(s.factory.performance)} />
                <Tile label="Quality" value={pct(s.factory.quality)} />
                <Tile label="Good units" value={String(s.factory.good_count)} />
                <Tile label="Open alerts" value={String(s.open_alerts)} tone={s.open_alerts > 0 ? 'warn' : undefined} />
              </div>
              <ul className="line-states" aria-label="Lines now">
                {s.lines.map((l) => (
                  <li key={l.line_id} className={`line-state st-${l.state}`}>
                    <span className="code">{l.line_code}</span>
                    <span className="name">{l.line_name}</span>
                    <span className={`badge st-${l.state}`}>{l.state}</span>
                    <span className="oee">OEE {pct(l.oee.oee)}</span>
                  </li>
                ))}
              </ul>
            </section>
          </>
        )}
      </Loaded>

      <section className="section" aria-labelledby="trend-h">
        <div className="section-head">
          <h2 id="trend-h">Last {DAYS} days</h2>
          <label className="inline-field">
            <span>Line</span>
            <select value={lineId} onChange={(e) => setLineId(e.target.value)}>
              <option value="">All lines</option>
              {(lines.data ?? []).map((l) => (
                <option key={l.id} value={l.id}>
                  {l.code} — {l.name}
                </option>
              ))}
            </select>
          </label>
        </div>
        <div className="charts">
          <div className="chart-card">
            <h3>OEE and its factors</h3>
            <Loaded state={trend} what="the OEE trend" isEmpty={(d) => !d || d.length === 0} empty="No production in this period.">
              {(pts) => (
                <LineChart
                  title="OEE trend"
                  labels={pts!.map((p) => p.period.slice(5))}
                  max={1}
                  series={[
                    { name: 'OEE', cls: 'c-oee', values: pts!.map((p) => oeeOf(p)) },
                    { name: 'Availability', cls: 'c-a', values: pts!.map((p) => ratio(p.run, p.planned)) },
                    { name: 'Performance', cls: 'c-p', values: pts!.map((p) => ratio(p.ideal, p.run)) },
                    { name: 'Quality', cls: 'c-q', values: pts!.map((p) => ratio(p.good, p.total)) },
                  ]}
                />
              )}
            </Loaded>
          </div>
          <div className="chart-card">
            <h3>Output vs plan</h3>
            <Loaded state={trend} what="output" isEmpty={(d) => !d || d.length === 0} empty="No production in this period.">
              {(pts) => (
                <GroupedBars
                  title="Output vs plan (units per day)"
                  labels={pts!.map((p) => p.period.slice(5))}
                  series={[
                    { name: 'Planned', cls: 'c-plan', values: pts!.map((p) => p.plan) },
                    { name: 'Good', cls: 'c-good', values: pts!.map((p) => p.good) },
                  ]}
                />
              )}
            </Loaded>
          </div>
          <div className="chart-card">
            <h3>Downtime by reason</h3>
            <Loaded state={pareto} what="downtime" isEmpty={(d) => !d || d.length === 0} empty="No downtime in this period.">
              {(rows) => (
                <Pareto
                  title="Downtime Pareto"
                  labels={rows!.map((r) => r.label ?? r.reason_code)}
                  minutes={rows!.map((r) => r.minutes)}
                  cumulative={rows!.map((r) => r.cumulative_share)}
                />
              )}
            </Loaded>
          </div>
        </div>
      </section>

      <div className="two-col">
        <section className="section" aria-labelledby="risk-h">
          <h2 id="risk-h">Orders at risk</h2>
          <Loaded state={summary} what="orders at risk" isEmpty={(s) => s.orders_at_risk.length === 0} empty="No order is at risk.">
            {(s) => (
              <ul className="risk-list">
                {s.orders_at_risk.map((o) => (
                  <li key={o.id}>
                    <strong>{o.number}</strong> · {o.customer} · {o.product_sku} × {o.quantity}
                    <br />
                    <span className="muted">
                      Due {o.due_date}; {o.progress.completed_quantity} done.
                    </span>{' '}
                    <span className="risk">{o.progress.risk ?? 'at risk'}</span>
                  </li>
                ))}
              </ul>
            )}
          </Loaded>
          <p>
            <Link to="/manager/orders">All orders</Link>
          </p>
        </section>
        <Alerts />
      </div>
    </>
  );
}

function oeeOf(p: Point): number | null {
  const a = ratio(p.run, p.planned);
  const pf = ratio(p.ideal, p.run);
  const q = ratio(p.good, p.total);
  return a === null || pf === null || q === null ? null : a * pf * q;
}

function Tile(props: { label: string; value: string; big?: boolean; tone?: 'warn' }) {
  return (
    <div className={`tile ${props.big ? 'big' : ''} ${props.tone ?? ''}`}>
      <span className="tile-label">{props.label}</span>
      <span className="tile-value">{props.value}</span>
    </div>
  );
}

function Alerts() {
  const alerts = useAsync(() => api.get<Alert[]>(`/api/alerts${qs({ open: true, limit: 20 })}`), [], 15_000);
  const ack = useAction();
  return (
    <section className="section" aria-labelledby="alerts-h" aria-live="polite">
      <h2 id="alerts-h">Live alerts</h2>
      <Message error={ack.error} />
      <Loaded state={alerts} what="alerts" isEmpty={(a) => a.length === 0} empty="No open alerts.">
        {(list) => (
          <ul className="alert-list">
            {list.map((a) => (
              <li key={a.id} className={`alert sev-${a.severity}`}>
                <div>
                  <span className={`badge sev-${a.severity}`}>{a.severity}</span> {a.message}
                  <br />
                  <span className="muted">{fmtTime(a.raised_at)}</span>
                </div>
                <button
                  type="button"
                  className="btn"
                  disabled={ack.busy}
                  onClick={() =>
                    void ack.run(async () => {
                      await api.post(`/api/alerts/${a.id}/acknowledge`);
                      alerts.reload();
                    })
                  }
                >
                  Acknowledge
                </button>
              </li>
            ))}
          </ul>
        )}
      </Loaded>
    </section>
  );
}
