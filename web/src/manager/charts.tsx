// Hand-written SVG charts (no chart library): a multi-series line chart, grouped bars and a
// Pareto chart. Colours come from CSS classes; each chart carries a visually hidden data table
// so screen readers get the numbers.
import type { ReactNode } from 'react';

const W = 640;
const H = 260;
const PAD = { l: 48, r: 48, t: 16, b: 44 };

export interface Series {
  name: string;
  values: (number | null)[];
  cls: string;
}

function ticks(max: number, n = 4): number[] {
  return Array.from({ length: n + 1 }, (_, i) => (max * i) / n);
}

function niceMax(v: number): number {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  const m = v / p;
  const nice = m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10;
  return nice * p;
}

function Frame(props: { title: string; desc: string; children: ReactNode; legend: { name: string; cls: string; kind?: 'bar' | 'line' }[]; table: ReactNode }) {
  return (
    <figure className="chart">
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`${props.title}. ${props.desc}`} preserveAspectRatio="xMidYMid meet">
        {props.children}
      </svg>
      <figcaption className="legend">
        {props.legend.map((l) => (
          <span key={l.name} className="legend-item">
            <svg width="18" height="12" aria-hidden="true" focusable="false">
              {l.kind === 'bar' ? <rect x="2" y="1" width="14" height="10" className={l.cls} /> : <line x1="1" y1="6" x2="17" y2="6" className={l.cls} />}
            </svg>
            {l.name}
          </span>
        ))}
      </figcaption>
      <div className="sr-only">{props.table}</div>
    </figure>
  );
}

/** The numbers behind a chart, as a table for screen readers and copying. */
function SeriesTable(props: { title: string; labels: string[]; series: Series[]; cell: (v: number | null) => string }) {
  return (
    <table>
      <caption>{props.title}</caption>
      <thead>
        <tr>
          <th scope="col">Period</th>
          {props.series.map((s) => (
            <th scope="col" key={s.name}>
              {s.name}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>
        {props.labels.map((l, i) => (
          <tr key={l}>
            <th scope="row">{l}</th>
            {props.series.map((s) => (
              <td key={s.name}>{props.cell(s.values[i] ?? null)}</td>
            ))}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function xLabels(labels: string[], x: (i: number) => number) {
  const every = Math.max(1, Math.ceil(labels.length / 8));
  return labels.map((l, i) =>
    i % every === 0 || i === labels.length - 1 ? (
      <text key={l + i} x={x(i)} y={H - PAD.b + 18} className="axis-text" textAnchor="middle">
        {l}
      </text>
    ) : null,
  );
}

function yAxis(max: number, fmt: (v: number) => string, y: (v: number) => number, side: 'l' | 'r' = 'l') {
  return ticks(max).map((v) => (
    <g key={`${side}${v}`}>
      {side === 'l' ? <line x1={PAD.l} x2={W - PAD.r} y1={y(v)} y2={y(v)} className="grid" /> : null}
      <text x={side === 'l' ? PAD.l - 6 : W - PAD.r + 6} y={y(v) + 4} className="axis-text" textAnchor={side === 'l' ? 'end' : 'start'}>
        {fmt(v)}
      </text>
    </g>
  ));
}

const pctFmt = (v: number) => `${Math.round(v * 100)}%`;

export function LineChart(props: { title: string; labels: string[]; series: Series[]; max?: number; fmt?: (v: number) => string }) {
  const max = props.max ?? niceMax(Math.max(0, ...props.series.flatMap((s) => s.values.filter((v): v is number => v !== null))));
  const fmt = props.fmt ?? pctFmt;
  const n = props.labels.length;
  const x = (i: number) => PAD.l + (n <= 1 ? 0 : (i * (W - PAD.l - PAD.r)) / (n - 1));
  const y = (v: number) => H - PAD.b - (Math.min(v, max) / max) * (H - PAD.t - PAD.b);
  const path = (vals: (number | null)[]) => {
    let d = '';
    let pen = false;
    vals.forEach((v, i) => {
      if (v === null) {
        pen = false;
        return;
      }
      d += `${pen ? 'L' : 'M'}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
    });
    return d;
  };
  return (
    <Frame
      title={props.title}
      desc={`${props.series.map((s) => s.name).join(', ')} over ${n} periods`}
      legend={props.series.map((s) => ({ name: s.name, cls: s.cls }))}
      table={
        <SeriesTable
          title={props.title}
          labels={props.labels}
          series={props.series}
          cell={(v) => (v === null ? '—' : fmt(v))}
        />
      }
    >
      {yAxis(max, fmt, y)}
      {xLabels(props.labels, x)}
      {props.series.map((s) => (
        <g key={s.name}>
          <path d={path(s.values)} className={`series ${s.cls}`} fill="none" />
          {s.values.map((v, i) => (v === null ? null : <circle key={i} cx={x(i)} cy={y(v)} r={3} className={`dot ${s.cls}`} />))}
        </g>
      ))}
    </Frame>
  );
}

export function GroupedBars(props: { title: string; labels: string[]; series: Series[]; fmt?: (v: number) => string }) {
  const fmt = props.fmt ?? ((v: number) => String(Math.round(v)));
  const max = niceMax(Math.max(0, ...props.series.flatMap((s) => s.values.map((v) => v ?? 0))));
  const n = props.labels.length;
  const band = (W - PAD.l - PAD.r) / Math.max(1, n);
  const bw = Math.max(2, (band * 0.75) / props.series.length);
  const x = (i: number) => PAD.l + band * i + band / 2;
  const y = (v: number) => H - PAD.b - (v / max) * (H - PAD.t - PAD.b);
  return (
    <Frame
      title={props.title}
      desc={`${props.series.map((s) => s.name).join(' and ')} by period`}
      legend={props.series.map((s) => ({ name: s.name, cls: s.cls, kind: 'bar' as const }))}
      table={<SeriesTable title={props.title} labels={props.labels} series={props.series} cell={(v) => fmt(v ?? 0)} />}
    >
      {yAxis(max, fmt, y)}
      {xLabels(props.labels, x)}
      {props.series.map((s, si) =>
        s.values.map((v, i) => {
          const h = ((v ?? 0) / max) * (H - PAD.t - PAD.b);
          const bx = x(i) - (bw * props.series.length) / 2 + si * bw;
          return <rect key={`${s.name}${i}`} x={bx} y={H - PAD.b - h} width={bw - 1} height={Math.max(0, h)} className={s.cls} />;
        }),
      )}
    </Frame>
  );
}

export function Pareto(props: { title: string; labels: string[]; minutes: number[]; cumulative: number[] }) {
  const max = niceMax(Math.max(0, ...props.minutes));
  const n = props.labels.length;
  const band = (W - PAD.l - PAD.r) / Math.max(1, n);
  const x = (i: number) => PAD.l + band * i + band / 2;
  const y = (v: number) => H - PAD.b - (v / max) * (H - PAD.t - PAD.b);
  const y2 = (v: number) => H - PAD.b - v * (H - PAD.t - PAD.b);
  const line = props.cumulative.map((c, i) => `${i ? 'L' : 'M'}${x(i).toFixed(1)},${y2(c).toFixed(1)}`).join('');
  const short = (l: string) => (l.length > 12 ? `${l.slice(0, 11)}…` : l);
  return (
    <Frame
      title={props.title}
      desc="Downtime minutes by reason, largest first, with the cumulative share"
      legend={[
        { name: 'Minutes', cls: 'c-down', kind: 'bar' },
        { name: 'Cumulative share', cls: 'c-cum' },
      ]}
      table={
        <table>
          <caption>{props.title}</caption>
          <thead>
            <tr>
              <th scope="col">Reason</th>
              <th scope="col">Minutes</th>
              <th scope="col">Cumulative share</th>
            </tr>
          </thead>
          <tbody>
            {props.labels.map((l, i) => (
              <tr key={l}>
                <th scope="row">{l}</th>
                <td>{Math.round(props.minutes[i])}</td>
                <td>{pctFmt(props.cumulative[i])}</td>
              </tr>
            ))}
          </tbody>
        </table>
      }
    >
      {yAxis(max, (v) => `${Math.round(v)}`, y)}
      {yAxis(1, pctFmt, y2, 'r')}
      {props.labels.map((l, i) => (
        <text key={l} x={x(i)} y={H - PAD.b + 18} className="axis-text" textAnchor="middle">
          {short(l)}
        </text>
      ))}
      {props.minutes.map((m, i) => (
        <rect key={i} x={x(i) - band * 0.35} y={y(m)} width={band * 0.7} height={Math.max(0, H - PAD.b - y(m))} className="c-down" />
      ))}
      <path d={line} className="series c-cum" fill="none" />
      {props.cumulative.map((c, i) => (
        <circle key={i} cx={x(i)} cy={y2(c)} r={3} className="dot c-cum" />
      ))}
    </Frame>
  );
}
