// Shifts as the line editor shows them (name, start, end, break) and as the API stores them
// (name, start, length in minutes, break): conversion and the checks made before sending.
import { ApiError } from '../api/problem';
import type { Shift } from '../api/types';

/** A problem found before sending, shown like the server's 422 ("This cannot be saved: …"). */
export function invalid(detail: string): ApiError {
  return new ApiError(422, { status: 422, code: 'invalid', detail }, null);
}

export interface ShiftRow {
  key: number;
  name: string;
  start: string;
  end: string;
  breakMinutes: string;
}

let lastKey = 0;
/** A fresh React key for a shift row. */
export function rowKey(): number {
  return ++lastKey;
}

export function toMinute(hhmm: string): number | null {
  const m = /^(\d{2}):(\d{2})$/.exec(hhmm);
  if (!m) return null;
  const h = Number(m[1]);
  const min = Number(m[2]);
  return h < 24 && min < 60 ? h * 60 + min : null;
}

export function fromMinute(total: number): string {
  const t = ((total % 1440) + 1440) % 1440;
  return `${String(Math.floor(t / 60)).padStart(2, '0')}:${String(t % 60).padStart(2, '0')}`;
}

/** Length in minutes from start to end; an end at or before the start runs past midnight. */
export function lengthOf(start: string, end: string): number | null {
  const a = toMinute(start);
  const b = toMinute(end);
  if (a === null || b === null) return null;
  const d = (b - a + 1440) % 1440;
  return d === 0 ? 1440 : d;
}

export function hours(minutes: number | null): string {
  if (minutes === null) return '—';
  const h = Math.floor(minutes / 60);
  const m = minutes % 60;
  return m ? `${h} h ${m} min` : `${h} h`;
}

/** "A 06:00–14:00" for the lines list. */
export function shiftSpan(s: Shift): string {
  return `${s.name} ${s.start}–${fromMinute((toMinute(s.start) ?? 0) + s.minutes)}`;
}

export function toRows(shifts: Shift[]): ShiftRow[] {
  return shifts.map((s) => ({
    key: rowKey(),
    name: s.name,
    start: s.start,
    end: fromMinute((toMinute(s.start) ?? 0) + s.minutes),
    breakMinutes: String(s.break_minutes),
  }));
}

export function fromRows(rows: ShiftRow[]): Shift[] {
  if (rows.length === 0) throw invalid('a line needs at least one shift');
  return rows.map((r, i) => {
    const name = r.name.trim();
    const label = name ? `shift ${name}` : `shift ${i + 1}`;
    if (!name) throw invalid(`${label} needs a name`);
    const minutes = lengthOf(r.start, r.end);
    if (minutes === null) throw invalid(`${label} needs a start and an end time`);
    if (minutes > 720) throw invalid(`${label} is ${hours(minutes)} long; a shift lasts at most 12 hours`);
    const breakMinutes = r.breakMinutes.trim() === '' ? 0 : Number(r.breakMinutes);
    if (!Number.isInteger(breakMinutes) || breakMinutes < 0 || breakMinutes >= minutes) {
      throw invalid(`the break of ${label} must be whole minutes, at least 0 and shorter than the shift`);
    }
    return { name, start: r.start, minutes, break_minutes: breakMinutes };
  });
}

export function sameShifts(a: Shift[], b: Shift[]): boolean {
  return (
    a.length === b.length &&
    a.every((s, i) => s.name === b[i].name && s.start === b[i].start && s.minutes === b[i].minutes && s.break_minutes === b[i].break_minutes)
  );
}

export function nextShiftName(rows: ShiftRow[]): string {
  for (const c of 'ABCDEFGH') if (!rows.some((r) => r.name.trim() === c)) return c;
  return `S${rows.length + 1}`;
}
