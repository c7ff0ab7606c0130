//! The daily production report of a line: one CSV row per shift (plan, output, scrap, stops and
//! the OEE factors with their inputs) and a total row, stored as a `report` document on the line.
//! A background job writes yesterday's report for every active line once the day is over; a
//! MANAGER can ask for any day's report at any time (a new document each time: a report is a
//! snapshot, and earlier ones stay as they were sent).

use time::Date;

use super::calendar::format_date;
use super::documents::{self, DocKind, Document, OwnerType, Upload};
use super::kpi::{self, Group};
use super::oee::Oee;
use super::{lines, ProdError, ProdResult};
use crate::app::AppState;

const HEADER: &str = "date,line,shift,planned_quantity,good,scrap,planned_minutes,downtime_minutes,run_minutes,availability,performance,quality,oee";

fn pct(x: Option<f64>) -> String {
    x.map(|v| format!("{:.1}", v * 100.0)).unwrap_or_default()
}

fn row(date: &str, line: &str, shift: &str, o: &Oee) -> String {
    format!(
        "{date},{line},{shift},{},{},{},{},{},{},{},{},{},{}",
        o.planned_quantity,
        o.good_count,
        o.scrap_count,
        o.planned_production_seconds / 60,
        o.downtime_seconds / 60,
        o.run_time_seconds / 60,
        pct(o.availability),
        pct(o.performance),
        pct(o.quality),
        pct(o.oee),
    )
}

/// Quotes a CSV field when needed, and defuses spreadsheet formulas.
fn field(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

pub async fn render(state: &AppState, line_id: &str, date: Date) -> ProdResult<(String, String)> {
    let kpi = kpi::line_oee(state, line_id, date, date, Group::Shift).await?;
    let d = format_date(date);
    let code = field(&kpi.line_code);
    let mut csv = String::from(HEADER);
    csv.push('\n');
    for bucket in &kpi.buckets {
        let shift = bucket.period.split_once('/').map(|(_, s)| s).unwrap_or("");
        csv.push_str(&row(&d, &code, &field(shift), &bucket.oee));
        csv.push('\n');
    }
    csv.push_str(&row(&d, &code, "TOTAL", &kpi.total));
    csv.push('\n');
    Ok((format!("{}-{d}.csv", kpi.line_code), csv))
}

/// Renders and stores the report as a document on the line.
pub async fn generate(
    state: &AppState,
    actor: Option<&str>,
    line_id: &str,
    date: Date,
) -> ProdResult<Document> {
    let (name, csv) = render(state, line_id, date).await?;
    documents::upload(
        state,
        actor,
        Upload {
            owner_type: OwnerType::Line,
            owner_id: line_id,
            kind: DocKind::Report,
            name: &name,
            content_type: "text/csv",
            bytes: csv.as_bytes(),
        },
    )
    .await
}

/// The background job: yesterday's report for each active line that has none yet, once every
/// shift of yesterday (a night shift runs into today) is over. A line that fails is logged and
/// retried on the next round; the others are written regardless.
pub async fn daily(state: &AppState) -> ProdResult<usize> {
    let Some(yesterday) = state.clock.today().previous_day() else {
        return Ok(0);
    };
    let now = crate::clock::now();
    let mut made = 0;
    for line in lines::list(&state.db)
        .await?
        .into_iter()
        .filter(|l| l.active)
    {
        let day_over = line
            .shifts
            .iter()
            .all(|s| state.clock.window(yesterday, s).1 <= now);
        if !day_over {
            continue;
        }
        let name = format!("{}-{}.csv", line.code, format_date(yesterday));
        let exists: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM documents WHERE owner_type = 'line' AND owner_id = $1 AND kind = 'report' AND name = $2",
        )
        .bind(&line.id)
        .bind(&name)
        .fetch_one(state.db.pool())
        .await?;
        if exists > 0 {
            continue;
        }
        match generate(state, None, &line.id, yesterday).await {
            Ok(_) => made += 1,
            Err(ProdError::NotFound) => {}
            Err(e) => {
                tracing::warn!(line = %line.code, error = %e, "daily report failed; will retry")
            }
        }
    }
    Ok(made)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(field("SMT-1"), "SMT-1");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(field("-1"), "'-1");
    }
}
