//! Textbook OEE from its inputs. Planned production time is the shift minus planned breaks; run
//! time is planned time minus recorded stops; availability = run / planned; performance = ideal
//! cycle time × total count / run time; quality = good / total; OEE is their product. Roll-ups
//! (day, week, factory) add the inputs first and compute the factors from the sums — averaging
//! percentages would weight an idle shift like a busy one. A factor whose denominator is zero is
//! `null`, not 0 or 100%. Performance is not capped: above 100% means the ideal cycle time is
//! wrong or stops went unrecorded, and hiding that would hide the problem.

use serde::Serialize;
use utoipa::ToSchema;

/// What a period produced and lost; additive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Inputs {
    pub planned_secs: i64,
    pub downtime_secs: i64,
    /// Σ ideal cycle time (ms) × units, over every unit counted (good and scrap).
    pub ideal_ms: i64,
    pub good: i64,
    pub scrap: i64,
    /// Units the schedule asked for in the period.
    pub planned_qty: i64,
}

impl std::ops::AddAssign for Inputs {
    fn add_assign(&mut self, o: Self) {
        self.planned_secs += o.planned_secs;
        self.downtime_secs += o.downtime_secs;
        self.ideal_ms += o.ideal_ms;
        self.good += o.good;
        self.scrap += o.scrap;
        self.planned_qty += o.planned_qty;
    }
}

/// Every factor with the inputs it came from.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Oee {
    pub planned_production_seconds: i64,
    pub downtime_seconds: i64,
    pub run_time_seconds: i64,
    pub ideal_cycle_seconds_total: f64,
    pub planned_quantity: i64,
    pub good_count: i64,
    pub scrap_count: i64,
    pub total_count: i64,
    /// run time / planned production time
    pub availability: Option<f64>,
    /// ideal cycle time × total count / run time
    pub performance: Option<f64>,
    /// good / total
    pub quality: Option<f64>,
    /// availability × performance × quality
    pub oee: Option<f64>,
}

fn ratio(num: f64, den: f64) -> Option<f64> {
    (den > 0.0).then(|| round4(num / den))
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

pub fn compute(i: Inputs) -> Oee {
    // Stops beyond the planned time (e.g. a stop during a break) cannot make run time negative.
    let downtime = i.downtime_secs.clamp(0, i.planned_secs.max(0));
    let run = i.planned_secs - downtime;
    let total = i.good + i.scrap;
    let ideal = i.ideal_ms as f64 / 1000.0;
    let availability = ratio(run as f64, i.planned_secs as f64);
    let performance = ratio(ideal, run as f64);
    let quality = ratio(i.good as f64, total as f64);
    let oee = match (availability, performance, quality) {
        (Some(a), Some(p), Some(q)) => Some(round4(a * p * q)),
        _ => None,
    };
    Oee {
        planned_production_seconds: i.planned_secs,
        downtime_seconds: downtime,
        run_time_seconds: run,
        ideal_cycle_seconds_total: round4(ideal),
        planned_quantity: i.planned_qty,
        good_count: i.good,
        scrap_count: i.scrap,
        total_count: total,
        availability,
        performance,
        quality,
        oee,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_textbook_example() {
        // 480 min shift, 2 × 15 min breaks, 47 min down, 19,271 units at 1 s ideal, 423 scrap.
        let oee = compute(Inputs {
            planned_secs: 450 * 60,
            downtime_secs: 47 * 60,
            ideal_ms: 19_271 * 1000,
            good: 19_271 - 423,
            scrap: 423,
            planned_qty: 20_000,
        });
        assert_eq!(oee.run_time_seconds, 403 * 60);
        assert_eq!(oee.availability, Some(0.8956));
        assert_eq!(oee.performance, Some(0.797));
        assert_eq!(oee.quality, Some(0.978));
        assert_eq!(oee.oee, Some(0.6981));
    }

    #[test]
    fn empty_denominators_are_null_not_zero() {
        let idle = compute(Inputs::default());
        assert_eq!(
            (idle.availability, idle.performance, idle.quality, idle.oee),
            (None, None, None, None)
        );
        let all_down = compute(Inputs {
            planned_secs: 3600,
            downtime_secs: 7200,
            ..Inputs::default()
        });
        assert_eq!(all_down.run_time_seconds, 0);
        assert_eq!(all_down.availability, Some(0.0));
        assert_eq!(all_down.performance, None);
    }

    #[test]
    fn roll_ups_add_inputs_before_dividing() {
        let busy = Inputs {
            planned_secs: 3600,
            downtime_secs: 0,
            ideal_ms: 3_600_000,
            good: 3600,
            scrap: 0,
            planned_qty: 3600,
        };
        let idle = Inputs {
            planned_secs: 3600,
            downtime_secs: 3600,
            ..Inputs::default()
        };
        let mut sum = busy;
        sum += idle;
        let day = compute(sum);
        assert_eq!(day.availability, Some(0.5));
        assert_eq!(day.performance, Some(1.0));
        assert_eq!(day.oee, Some(0.5));
    }
}
