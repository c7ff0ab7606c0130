//! The factory calendar: work dates and shifts in factory local time (a fixed offset from UTC,
//! `IMS_FACTORY_UTC_OFFSET`), and the windows of real time they cover. A shift starts at a local
//! `HH:MM` on its work date and may run past midnight (a night shift belongs to the date it
//! started on). Planned production time is a shift's length minus its planned breaks.

use serde::{Deserialize, Serialize};
use time::{Date, Duration, Month, OffsetDateTime, Time, UtcOffset};
use utoipa::ToSchema;

pub const MAX_SHIFTS: usize = 4;

/// One shift of a line's working day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Shift {
    /// Short name, e.g. `A`, `Day`, `Night`.
    pub name: String,
    /// Local start time, `HH:MM`.
    pub start: String,
    /// Length in minutes, 1 to 720.
    pub minutes: i64,
    /// Planned breaks within the shift, in minutes (less than its length).
    pub break_minutes: i64,
}

impl Shift {
    /// Minutes after local midnight at which the shift starts.
    pub fn start_minute(&self) -> Option<i64> {
        let (h, m) = self.start.split_once(':')?;
        if h.len() != 2 || m.len() != 2 {
            return None;
        }
        let h: i64 = h.parse().ok()?;
        let m: i64 = m.parse().ok()?;
        ((0..24).contains(&h) && (0..60).contains(&m)).then_some(h * 60 + m)
    }

    /// Planned production time in seconds.
    pub fn planned_secs(&self) -> i64 {
        (self.minutes - self.break_minutes).max(0) * 60
    }
}

/// Checks a line's shifts: 1 to 4, distinct names, valid times, and no two overlapping within
/// the repeating 24-hour day.
pub fn validate_shifts(shifts: &[Shift]) -> Result<(), String> {
    if shifts.is_empty() || shifts.len() > MAX_SHIFTS {
        return Err(format!("a line has 1 to {MAX_SHIFTS} shifts"));
    }
    let mut spans = Vec::new();
    for (i, s) in shifts.iter().enumerate() {
        let name_ok = (1..=16).contains(&s.name.chars().count())
            && s.name
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '_' || c == ' ');
        if !name_ok {
            return Err("a shift name is 1 to 16 letters, digits, spaces, '-' or '_'".into());
        }
        if shifts[..i].iter().any(|o| o.name == s.name) {
            return Err(format!("shift name '{}' is used twice", s.name));
        }
        let start = s
            .start_minute()
            .ok_or_else(|| format!("shift '{}': start must be HH:MM", s.name))?;
        if !(1..=720).contains(&s.minutes) {
            return Err(format!("shift '{}': minutes must be 1 to 720", s.name));
        }
        if s.break_minutes < 0 || s.break_minutes >= s.minutes {
            return Err(format!(
                "shift '{}': break_minutes must be at least 0 and less than its length",
                s.name
            ));
        }
        spans.push((start, start + s.minutes));
    }
    for (i, a) in spans.iter().enumerate() {
        for b in &spans[i + 1..] {
            // Compare on a 48-hour axis so a shift running past midnight meets the early ones.
            let overlaps = |x: (i64, i64), y: (i64, i64)| x.0 < y.1 && y.0 < x.1;
            let shifted = (b.0 + 1440, b.1 + 1440);
            let a_shifted = (a.0 + 1440, a.1 + 1440);
            if overlaps(*a, *b) || overlaps(*a, shifted) || overlaps(a_shifted, *b) {
                return Err("shifts of a line must not overlap".into());
            }
        }
    }
    Ok(())
}

/// Converts between real time and the factory's calendar.
#[derive(Debug, Clone, Copy)]
pub struct FactoryClock {
    pub offset: UtcOffset,
}

impl FactoryClock {
    pub fn new(offset: UtcOffset) -> Self {
        Self { offset }
    }

    /// The factory's date at this instant.
    pub fn date_at(&self, at: i64) -> Date {
        OffsetDateTime::from_unix_timestamp(at)
            .map(|t| t.to_offset(self.offset).date())
            .unwrap_or(Date::MIN)
    }

    pub fn today(&self) -> Date {
        self.date_at(crate::clock::now())
    }

    /// Unix seconds of local midnight starting this date.
    pub fn midnight(&self, date: Date) -> i64 {
        date.with_time(Time::MIDNIGHT)
            .assume_offset(self.offset)
            .unix_timestamp()
    }

    /// The real-time window `[start, end)` of a shift on a work date.
    pub fn window(&self, date: Date, shift: &Shift) -> (i64, i64) {
        let start = self.midnight(date) + shift.start_minute().unwrap_or(0) * 60;
        (start, start + shift.minutes * 60)
    }

    /// The work date and shift whose window contains this instant, if any.
    pub fn locate<'a>(&self, shifts: &'a [Shift], at: i64) -> Option<(Date, &'a Shift)> {
        let today = self.date_at(at);
        let yesterday = today.previous_day()?;
        [today, yesterday].into_iter().find_map(|date| {
            shifts.iter().find_map(|s| {
                let (start, end) = self.window(date, s);
                (start <= at && at < end).then_some((date, s))
            })
        })
    }
}

/// Seconds two half-open intervals share.
pub fn overlap(a: (i64, i64), b: (i64, i64)) -> i64 {
    (a.1.min(b.1) - a.0.max(b.0)).max(0)
}

/// Sorted, non-overlapping intervals covering the same time (so overlapping stops count once).
pub fn merge(mut intervals: Vec<(i64, i64)>) -> Vec<(i64, i64)> {
    intervals.sort_unstable();
    let mut out: Vec<(i64, i64)> = Vec::with_capacity(intervals.len());
    for (start, end) in intervals.into_iter().filter(|(s, e)| e > s) {
        match out.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => out.push((start, end)),
        }
    }
    out
}

/// Parses `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Option<Date> {
    let mut parts = text.splitn(3, '-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let year: i32 = y.parse().ok()?;
    if !(2000..=2999).contains(&year) {
        return None;
    }
    let month = Month::try_from(m.parse::<u8>().ok()?).ok()?;
    Date::from_calendar_date(year, month, d.parse().ok()?).ok()
}

/// Formats as `YYYY-MM-DD`.
pub fn format_date(date: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// The Monday of the ISO week containing this date.
pub fn week_start(date: Date) -> Date {
    date - Duration::days(i64::from(date.weekday().number_days_from_monday()))
}

/// Every date from `from` to `to`, inclusive.
pub fn dates(from: Date, to: Date) -> impl Iterator<Item = Date> {
    std::iter::successors(Some(from), move |d| d.next_day().filter(|n| *n <= to))
        .take_while(move |d| *d <= to)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shift(name: &str, start: &str, minutes: i64, breaks: i64) -> Shift {
        Shift {
            name: name.into(),
            start: start.into(),
            minutes,
            break_minutes: breaks,
        }
    }

    #[test]
    fn three_eight_hour_shifts_are_valid_and_a_fourth_overlapping_one_is_not() {
        let mut shifts = vec![
            shift("A", "06:00", 480, 30),
            shift("B", "14:00", 480, 30),
            shift("C", "22:00", 480, 30),
        ];
        assert_eq!(validate_shifts(&shifts), Ok(()));
        shifts.push(shift("D", "05:00", 120, 0));
        assert!(validate_shifts(&shifts).is_err(), "D meets C past midnight");
    }

    #[test]
    fn bad_shifts_are_refused() {
        for bad in [
            vec![],
            vec![shift("A", "6:00", 480, 0)],
            vec![shift("A", "24:00", 480, 0)],
            vec![shift("A", "06:00", 0, 0)],
            vec![shift("A", "06:00", 721, 0)],
            vec![shift("A", "06:00", 60, 60)],
            vec![shift("A", "06:00", 60, -1)],
            vec![shift("", "06:00", 60, 0)],
            vec![shift("A", "06:00", 60, 0), shift("A", "08:00", 60, 0)],
            vec![shift("A", "06:00", 120, 0), shift("B", "07:00", 60, 0)],
        ] {
            assert!(validate_shifts(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn windows_follow_the_factory_offset_and_night_shifts_belong_to_their_start_date() {
        let clock = FactoryClock::new(UtcOffset::from_hms(7, 0, 0).unwrap());
        let date = parse_date("2026-03-02").unwrap();
        let night = shift("C", "22:00", 480, 30);
        let (start, end) = clock.window(date, &night);
        // 22:00 at +07:00 is 15:00 UTC.
        assert_eq!(crate::clock::rfc3339(start), "2026-03-02T15:00:00Z");
        assert_eq!(end - start, 8 * 3600);
        let shifts = vec![shift("A", "06:00", 480, 30), night.clone()];
        // 02:00 local on the 3rd is still the night shift of the 2nd.
        let at = clock.midnight(parse_date("2026-03-03").unwrap()) + 2 * 3600;
        let (d, s) = clock.locate(&shifts, at).unwrap();
        assert_eq!(
            (format_date(d).as_str(), s.name.as_str()),
            ("2026-03-02", "C")
        );
        // 15:00 local is in no shift.
        let gap = clock.midnight(date) + 15 * 3600;
        assert!(clock.locate(&shifts, gap).is_none());
        assert_eq!(night.planned_secs(), 450 * 60);
    }

    #[test]
    fn dates_parse_strictly_and_weeks_start_on_monday() {
        assert!(parse_date("2026-02-29").is_none());
        assert!(parse_date("2026-2-01").is_none());
        assert!(parse_date("1999-01-01").is_none());
        assert!(parse_date("2026-01-01x").is_none());
        let d = parse_date("2026-11-26").unwrap(); // a Thursday
        assert_eq!(format_date(week_start(d)), "2026-11-23");
        let span: Vec<_> = dates(
            parse_date("2026-12-30").unwrap(),
            parse_date("2027-01-02").unwrap(),
        )
        .map(format_date)
        .collect();
        assert_eq!(
            span,
            ["2026-12-30", "2026-12-31", "2027-01-01", "2027-01-02"]
        );
        assert_eq!(overlap((0, 10), (5, 20)), 5);
        assert_eq!(overlap((0, 10), (10, 20)), 0);
        assert_eq!(
            merge(vec![(5, 9), (0, 3), (2, 6), (10, 10), (12, 15)]),
            [(0, 9), (12, 15)]
        );
    }
}
