//! Publishing a schedule: the planner's drafts become the line leaders' tasks. Publishing a
//! date range (optionally one line) stamps its planned work orders as published and, in the same
//! transaction, emails each leader of an affected line the list of their tasks. Until then a
//! work order is the planner's draft, invisible on the shop floor.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::calendar::format_date;
use super::work_orders::{self, work_date};
use super::{invalid, ProdResult};
use crate::app::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishBody {
    /// `YYYY-MM-DD`
    pub from: String,
    /// `YYYY-MM-DD`, at most 31 days after `from`.
    pub to: String,
    pub line_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Published {
    /// Draft work orders newly published (new, or rescheduled since the last publication).
    pub published: i64,
    /// Line leaders emailed their tasks.
    pub leaders_notified: i64,
}

pub async fn publish(state: &AppState, body: &PublishBody) -> ProdResult<Published> {
    let from = work_date(&body.from)?;
    let to = work_date(&body.to)?;
    if to < from || (to - from).whole_days() > 31 {
        return Err(invalid(
            "invalid_range",
            "to must be on or after from, at most 31 days later",
        ));
    }
    let (from, to) = (format_date(from), format_date(to));
    let line = body.line_id.clone().unwrap_or_default();
    let now = crate::clock::now();
    let mut tx = state.db.begin_write().await?;
    let drafts: Vec<(String, String)> = sqlx::query_as(
        "SELECT id, line_id FROM work_orders
         WHERE work_date >= $1 AND work_date <= $2 AND ($3 = '' OR line_id = $3)
           AND status = 'planned' AND published_at IS NULL",
    )
    .bind(&from)
    .bind(&to)
    .bind(&line)
    .fetch_all(&mut *tx)
    .await?;
    for (id, _) in &drafts {
        sqlx::query(
            "UPDATE work_orders SET published_at = $1 WHERE id = $2 AND published_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    }
    let published = drafts.len() as i64;
    let changed: BTreeSet<&str> = drafts.iter().map(|(_, l)| l.as_str()).collect();
    let filter = "WHERE w.work_date >= $1 AND w.work_date <= $2 AND ($3 = '' OR w.line_id = $3)
                  AND w.published_at IS NOT NULL AND w.status IN ('planned', 'in_progress', 'paused')
                  ORDER BY w.work_date, w.shift, l.code, w.sequence";
    let tasks = work_orders::fetch(&mut *tx, filter, &[&from, &to, &line]).await?;
    let leaders: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT ll.line_id, u.email, u.name, u.id FROM line_leaders ll JOIN users u ON u.id = ll.user_id
         WHERE u.disabled = 0 AND u.email_verified = 1",
    )
    .fetch_all(&mut *tx)
    .await?;
    // Each leader of a line with newly published work gets their whole list for the period.
    let mut per_leader: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for (line_id, email, name, _) in leaders.iter().filter(|l| changed.contains(l.0.as_str())) {
        for t in tasks.iter().filter(|t| &t.line_id == line_id) {
            per_leader
                .entry((email.clone(), name.clone()))
                .or_default()
                .push(format!(
                    "{} shift {} · {} #{} · order {} · {} × {}",
                    t.work_date,
                    t.shift,
                    t.line_code,
                    t.sequence,
                    t.order_number,
                    t.product_sku,
                    t.quantity
                ));
        }
    }
    if published > 0 {
        let period = if from == to {
            from.clone()
        } else {
            format!("{from} to {to}")
        };
        for ((email, name), lines) in &per_leader {
            let mail = crate::mail::templates::tasks_published(
                name,
                &period,
                lines,
                &state.notifier.public_url,
            );
            state.notifier.send_notice(&mut tx, email, mail).await?;
        }
    }
    tx.commit().await?;
    state.notifier.wake.notify_one();
    Ok(Published {
        published,
        leaders_notified: if published > 0 {
            per_leader.len() as i64
        } else {
            0
        },
    })
}
