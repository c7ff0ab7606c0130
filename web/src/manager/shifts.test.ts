// The line editor's shift conversion: start/end/break rows ⇄ the API's start/minutes/break.
import { describe as group, expect, it } from 'vitest';
import { ApiError, describe } from '../api/problem';
import { fromRows, lengthOf, nextShiftName, sameShifts, shiftSpan, toRows } from './shifts';

const demo = [
  { name: 'A', start: '06:00', minutes: 480, break_minutes: 30 },
  { name: 'B', start: '14:00', minutes: 480, break_minutes: 30 },
  { name: 'C', start: '22:00', minutes: 480, break_minutes: 30 },
];

function problem(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ApiError);
    return describe(e);
  }
  throw new Error('expected a problem');
}

group('shift rows', () => {
  it('round-trips the API shape, including a night shift past midnight', () => {
    const rows = toRows(demo);
    expect(rows.map((r) => [r.start, r.end])).toEqual([
      ['06:00', '14:00'],
      ['14:00', '22:00'],
      ['22:00', '06:00'],
    ]);
    expect(new Set(rows.map((r) => r.key)).size).toBe(3);
    const back = fromRows(rows);
    expect(back).toEqual(demo);
    expect(sameShifts(back, demo)).toBe(true);
    expect(shiftSpan(demo[2])).toBe('C 22:00–06:00');
  });

  it('computes lengths from start and end', () => {
    expect(lengthOf('16:00', '23:30')).toBe(450);
    expect(lengthOf('22:00', '06:00')).toBe(480);
    expect(lengthOf('08:00', '08:00')).toBe(1440);
    expect(lengthOf('', '08:00')).toBeNull();
  });

  it('explains rows the server would refuse, in plain words', () => {
    const [a] = toRows(demo);
    expect(problem(() => fromRows([]))).toBe('This cannot be saved: A line needs at least one shift.');
    expect(problem(() => fromRows([{ ...a, name: ' ' }]))).toBe('This cannot be saved: Shift 1 needs a name.');
    expect(problem(() => fromRows([{ ...a, end: '20:00' }]))).toBe('This cannot be saved: Shift A is 14 h long; a shift lasts at most 12 hours.');
    expect(problem(() => fromRows([{ ...a, breakMinutes: '480' }]))).toMatch(/break of shift A must be/);
    expect(fromRows([{ ...a, breakMinutes: '' }])[0].break_minutes).toBe(0);
  });

  it('names a new shift with the first free letter', () => {
    expect(nextShiftName(toRows(demo))).toBe('D');
    expect(nextShiftName(toRows([demo[1]]))).toBe('A');
  });
});
