//! What happened on a line during one shift, made up consistently: a planned break in the middle,
//! 0–4 stops (2–45 min, reasons weighted by what usually stops an electronics line of that kind)
//! that overlap neither the break nor each other, and output reports every few minutes whose
//! units come only from the running time of their interval, at the shift's performance (75–95%
//! of the ideal rate) with 0.5–4% scrap. Also the tiny deterministic PRNG the demo uses. Pure
//! functions: no database here.

use crate::production::calendar::overlap;
use crate::production::LineKind;

/// SplitMix64: tiny, fast, and good enough for made-up data; the same seed gives the same factory.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[lo, hi]`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        lo + (self.next() % (hi - lo + 1) as u64) as i64
    }

    pub fn between(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// One of `items`, chosen with the given weights (the first when all weigh nothing, the
    /// default when there are none).
    pub fn pick<T: Copy + Default>(&mut self, items: &[(T, u32)]) -> T {
        let total: u32 = items.iter().map(|i| i.1).sum();
        let mut x = (self.next() % u64::from(total.max(1))) as u32;
        for (item, w) in items {
            if x < *w {
                return *item;
            }
            x -= w;
        }
        items.first().map(|i| i.0).unwrap_or_default()
    }
}

/// One line's shift as far as it is simulated: real-time window, planned break, and the instant
/// up to which it has run (the window's end for a finished shift, now for one under way).
#[derive(Debug, Clone, Copy)]
pub struct Run {
    pub kind: LineKind,
    pub ideal_ms: i64,
    pub window: (i64, i64),
    pub pause: (i64, i64),
    pub until: i64,
}

/// A stop: `[start, end)` and its downtime reason code.
#[derive(Debug, Clone)]
pub struct Stop {
    pub start: i64,
    pub end: i64,
    pub reason: &'static str,
}

/// One output report.
#[derive(Debug, Clone)]
pub struct Report {
    pub at: i64,
    pub good: i64,
    pub scrap: i64,
    pub reason: Option<&'static str>,
}

fn stop_reasons(kind: LineKind) -> &'static [(&'static str, u32)] {
    match kind {
        LineKind::Smt => &[
            ("FEEDER_JAM", 30),
            ("CHANGEOVER", 25),
            ("MACHINE_FAULT", 15),
            ("MATERIAL_SHORTAGE", 15),
            ("QUALITY_HOLD", 8),
            ("NO_OPERATOR", 7),
        ],
        LineKind::Test => &[
            ("MACHINE_FAULT", 30),
            ("CHANGEOVER", 20),
            ("QUALITY_HOLD", 20),
            ("MATERIAL_SHORTAGE", 15),
            ("NO_OPERATOR", 15),
        ],
        LineKind::Dip | LineKind::Assembly => &[
            ("MATERIAL_SHORTAGE", 30),
            ("CHANGEOVER", 20),
            ("MACHINE_FAULT", 20),
            ("NO_OPERATOR", 15),
            ("QUALITY_HOLD", 15),
        ],
    }
}

fn scrap_reasons(kind: LineKind) -> &'static [(&'static str, u32)] {
    match kind {
        LineKind::Smt => &[
            ("SOLDER_BRIDGE", 35),
            ("MISSING_COMPONENT", 30),
            ("TOMBSTONE", 25),
            ("DAMAGED", 10),
        ],
        LineKind::Dip => &[
            ("SOLDER_BRIDGE", 50),
            ("MISSING_COMPONENT", 25),
            ("DAMAGED", 25),
        ],
        LineKind::Test => &[("TEST_FAIL", 85), ("DAMAGED", 15)],
        LineKind::Assembly => &[("DAMAGED", 60), ("TEST_FAIL", 40)],
    }
}

/// A pause reason and the note a leader would type.
pub fn pause_reason(rng: &mut Rng) -> (&'static str, &'static str) {
    rng.pick(&[
        (
            (
                "MATERIAL_SHORTAGE",
                "Waiting for reels of 0402 10k from stores",
            ),
            2,
        ),
        (
            (
                "MACHINE_FAULT",
                "Placement head 2 vacuum error; maintenance called",
            ),
            2,
        ),
        (
            (
                "QUALITY_HOLD",
                "AOI flags solder bridges on U7; engineer checking the stencil",
            ),
            1,
        ),
    ])
}

/// The planned break of a shift window: its middle `break_minutes`.
pub fn break_window(window: (i64, i64), break_minutes: i64) -> (i64, i64) {
    let length = break_minutes * 60;
    let start = window.0 + ((window.1 - window.0) - length).max(0) / 2;
    (start, start + length)
}

/// 0–4 stops inside `window`, before `until`, clear of the break and of each other; sorted.
pub fn stops(rng: &mut Rng, run: &Run) -> Vec<Stop> {
    let (window, pause, until) = (run.window, run.pause, run.until);
    let count = rng.pick(&[(0usize, 15), (1, 30), (2, 30), (3, 15), (4, 10)]);
    let mut out: Vec<Stop> = Vec::new();
    for _ in 0..count {
        // Short stops are common, long ones rare.
        let minutes = 2 + (43.0 * rng.unit() * rng.unit()).round() as i64;
        let length = minutes * 60;
        for _attempt in 0..8 {
            let start = rng.range(window.0, window.1 - length);
            let span = (start, start + length);
            let clear = overlap(span, pause) == 0
                && span.1 <= until
                && out
                    .iter()
                    .all(|s| overlap(span, (s.start - 60, s.end + 60)) == 0);
            if clear {
                out.push(Stop {
                    start,
                    end: start + length,
                    reason: rng.pick(stop_reasons(run.kind)),
                });
                break;
            }
        }
    }
    out.sort_by_key(|s| s.start);
    out
}

/// Output reports every `every` seconds from the start of the run up to its `until` (only whole
/// intervals are reported for a shift under way).
pub fn output(rng: &mut Rng, run: &Run, stops: &[Stop], every: i64) -> Vec<Report> {
    let (window, pause, until) = (run.window, run.pause, run.until);
    let performance = rng.between(0.75, 0.95);
    let scrap_rate = rng.between(0.005, 0.04);
    let ideal = run.ideal_ms.max(1) as f64 / 1000.0;
    let mut carry = 0.0;
    let mut out = Vec::new();
    let mut from = window.0;
    while from < until {
        let to = (from + every).min(window.1);
        if to > until {
            break;
        }
        let lost = overlap((from, to), pause)
            + stops
                .iter()
                .map(|s| overlap((from, to), (s.start, s.end)))
                .sum::<i64>();
        let running = (to - from - lost).max(0);
        carry += running as f64 / ideal * performance * rng.between(0.93, 1.07);
        let units = carry.floor() as i64;
        carry -= units as f64;
        if units > 0 {
            let scrap = (0..units).filter(|_| rng.unit() < scrap_rate).count() as i64;
            out.push(Report {
                at: (to - rng.range(1, 40)).max(from),
                good: units - scrap,
                scrap,
                reason: (scrap > 0).then(|| rng.pick(scrap_reasons(run.kind))),
            });
        }
        from = to;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shift_is_consistent_no_output_during_stops_and_a_plausible_rate() {
        let mut rng = Rng::new(7);
        let window = (1_000_000, 1_000_000 + 480 * 60);
        let pause = break_window(window, 30);
        assert_eq!(pause.0 - window.0, 225 * 60);
        let run = Run {
            kind: LineKind::Smt,
            ideal_ms: 15_000,
            window,
            pause,
            until: window.1,
        };
        for _ in 0..200 {
            let stops = stops(&mut rng, &run);
            assert!(stops.len() <= 4);
            for (i, s) in stops.iter().enumerate() {
                assert!(s.start >= window.0 && s.end <= window.1 && s.end > s.start);
                assert_eq!(overlap((s.start, s.end), pause), 0);
                assert!(stops[i + 1..]
                    .iter()
                    .all(|o| overlap((s.start, s.end), (o.start, o.end)) == 0));
            }
            let reports = output(&mut rng, &run, &stops, 300);
            let units: i64 = reports.iter().map(|r| r.good + r.scrap).sum();
            let down: i64 = stops.iter().map(|s| s.end - s.start).sum();
            let run = 450 * 60 - down;
            let performance = units as f64 * 15.0 / run as f64;
            assert!((0.70..=1.0).contains(&performance), "{performance}");
            for r in &reports {
                assert!(r.at > window.0 && r.at <= window.1);
                assert_eq!(r.reason.is_some(), r.scrap > 0);
                // An interval wholly inside a stop or the break reports nothing.
                let interval = (r.at - 300, r.at);
                assert!(stops
                    .iter()
                    .all(|s| !(s.start <= interval.0 - 40 && s.end >= interval.1 + 40)));
            }
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_numbers() {
        let (mut a, mut b) = (Rng::new(42), Rng::new(42));
        let xs: Vec<u64> = (0..5).map(|_| a.next()).collect();
        let ys: Vec<u64> = (0..5).map(|_| b.next()).collect();
        assert_eq!(xs, ys);
        assert!((0..1000).all(|_| (3..=9).contains(&a.range(3, 9))));
    }
}
