//! The embedded queue: rows in `queue_messages`. Receiving sets a visibility lease in one
//! conditional `UPDATE` (with `SKIP LOCKED` on PostgreSQL), so two consumers never hold the same
//! message; a message received [`MAX_RECEIVES`] times without being deleted is parked (`dead`)
//! instead of being retried forever — the database's dead-letter queue.

use super::{Attributes, Queue, QueueError, QueueFuture, Received, MAX_RECEIVES, VISIBILITY_SECS};
use crate::db::{Backend, Db};

pub struct DbQueue {
    db: Db,
}

impl DbQueue {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

fn unavailable(e: sqlx::Error) -> QueueError {
    QueueError(crate::db::describe(&e))
}

impl Queue for DbQueue {
    fn name(&self) -> &'static str {
        "database"
    }

    fn send<'a>(
        &'a self,
        dedupe_id: &'a str,
        body: &'a str,
        attributes: &'a Attributes,
    ) -> QueueFuture<'a, ()> {
        Box::pin(async move {
            let attrs = serde_json::to_string(attributes).map_err(|e| QueueError(e.to_string()))?;
            let now = crate::clock::now();
            // The outbox id is the message id: a resend after a crash is a no-op.
            sqlx::query(
                "INSERT INTO queue_messages (id, kind, body, attributes, visible_at, receive_count, dead, created_at)
                 VALUES ($1, $2, $3, $4, $5, 0, 0, $5) ON CONFLICT (id) DO NOTHING",
            )
            .bind(dedupe_id)
            .bind(&attributes.kind)
            .bind(body)
            .bind(attrs)
            .bind(now)
            .execute(self.db.pool())
            .await
            .map_err(unavailable)?;
            Ok(())
        })
    }

    fn receive(&self, max: usize) -> QueueFuture<'_, Vec<Received>> {
        Box::pin(async move {
            let mut out = Vec::new();
            while out.len() < max {
                match self.claim_one().await.map_err(unavailable)? {
                    Some(m) => out.push(m),
                    None => break,
                }
            }
            Ok(out)
        })
    }

    fn delete<'a>(&'a self, message: &'a Received) -> QueueFuture<'a, ()> {
        Box::pin(async move {
            sqlx::query("DELETE FROM queue_messages WHERE id = $1 AND visible_at = $2")
                .bind(&message.id)
                .bind(message.receipt.parse::<i64>().unwrap_or(-1))
                .execute(self.db.pool())
                .await
                .map_err(unavailable)?;
            Ok(())
        })
    }
}

impl DbQueue {
    async fn claim_one(&self) -> Result<Option<Received>, sqlx::Error> {
        let now = crate::clock::now();
        let lock = match self.db.backend() {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        // Park messages that were received too often first.
        sqlx::query(
            "UPDATE queue_messages SET dead = 1
             WHERE dead = 0 AND visible_at <= $1 AND receive_count >= $2",
        )
        .bind(now)
        .bind(MAX_RECEIVES)
        .execute(self.db.pool())
        .await?;
        // The receipt is the new visible_at, made unique per receive by the receive count.
        let until = now + VISIBILITY_SECS;
        let sql = format!(
            "UPDATE queue_messages SET visible_at = $2 + receive_count + 1, receive_count = receive_count + 1
             WHERE id = (SELECT id FROM queue_messages WHERE dead = 0 AND visible_at <= $1
                         ORDER BY visible_at, id LIMIT 1{lock})
               AND dead = 0 AND visible_at <= $1
             RETURNING id, body, receive_count, visible_at"
        );
        let row: Option<(String, String, i64, i64)> = sqlx::query_as(&sql)
            .bind(now)
            .bind(until)
            .fetch_optional(self.db.pool())
            .await?;
        Ok(row.map(|(id, body, receive_count, visible_at)| Received {
            id,
            receipt: visible_at.to_string(),
            body,
            receive_count,
        }))
    }

    /// Messages parked after too many receives.
    pub async fn dead_count(&self) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar("SELECT COUNT(*) FROM queue_messages WHERE dead = 1")
            .fetch_one(self.db.pool())
            .await
    }
}
