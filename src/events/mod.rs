//! Execution events, the queue they travel on, and the alerts channel. An event is written to
//! the outbox in the same transaction as the change it describes ([`enqueue`]); the outbox
//! worker hands it to the [`Queue`] (the database by default, SQS with `IMS_QUEUE_URL`), and the
//! consumer ([`consumer`]) evaluates alert rules for it. Alerts are published to the
//! [`AlertsChannel`] (the log by default, SNS with `IMS_ALERTS_TOPIC_ARN`) through the outbox as well, so
//! neither a crash nor an outage of the queue or channel loses one. Message attributes (type,
//! line, order, severity) travel beside the body so subscribers can filter without parsing it.

pub mod channel;
pub mod consumer;
pub mod db_queue;
pub mod sns;
pub mod sqs;

use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};
use sqlx::{Any, Transaction};

use crate::mail::outbox;

/// Outbox kinds handled by this module.
pub const KIND_EVENT: &str = "event";
pub const KIND_ALERT: &str = "alert";

/// Something that happened on the shop floor.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Event {
    /// e.g. `work_order.started`, `work_order.output`
    pub kind: String,
    pub line_id: Option<String>,
    pub order_id: Option<String>,
    pub work_order_id: Option<String>,
    /// `info`, `warning` or `critical`
    pub severity: String,
    pub at: i64,
    pub data: serde_json::Value,
}

/// Filterable attributes of a message (SQS message attributes, SNS filter policies).
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct Attributes {
    #[serde(rename = "type")]
    pub kind: String,
    pub line: Option<String>,
    pub order: Option<String>,
    pub severity: String,
}

impl Attributes {
    /// The attributes that have a value, as (name, value), for SQS and SNS message attributes.
    pub fn pairs(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            ("type", Some(self.kind.as_str())),
            ("line", self.line.as_deref()),
            ("order", self.order.as_deref()),
            ("severity", Some(self.severity.as_str())),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.filter(|v| !v.is_empty()).map(|v| (name, v)))
    }
}

impl Event {
    pub fn attributes(&self) -> Attributes {
        Attributes {
            kind: self.kind.clone(),
            line: self.line_id.clone(),
            order: self.order_id.clone(),
            severity: self.severity.clone(),
        }
    }
}

/// Queues an event in the caller's transaction.
pub async fn enqueue(tx: &mut Transaction<'static, Any>, event: &Event) -> anyhow::Result<()> {
    let id = uuid::Uuid::now_v7().to_string();
    let payload = serde_json::to_string(event)?;
    outbox::insert(&mut **tx, &id, KIND_EVENT, &event.kind, "", &payload).await?;
    Ok(())
}

/// A message taken from the queue; invisible to other consumers until its lease runs out.
#[derive(Debug, Clone)]
pub struct Received {
    pub id: String,
    /// Opaque handle for [`Queue::delete`].
    pub receipt: String,
    pub body: String,
    pub receive_count: i64,
}

#[derive(Debug, thiserror::Error)]
#[error("queue unavailable: {0}")]
pub struct QueueError(pub String);

pub type QueueFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, QueueError>> + Send + 'a>>;

/// At-least-once delivery: a received message comes back after its visibility timeout unless it
/// is deleted, and lands in the dead-letter store after [`MAX_RECEIVES`] receives.
pub trait Queue: Send + Sync {
    fn name(&self) -> &'static str;
    /// `dedupe_id` is stable across retries of the same outbox row.
    fn send<'a>(
        &'a self,
        dedupe_id: &'a str,
        body: &'a str,
        attributes: &'a Attributes,
    ) -> QueueFuture<'a, ()>;
    fn receive(&self, max: usize) -> QueueFuture<'_, Vec<Received>>;
    fn delete<'a>(&'a self, message: &'a Received) -> QueueFuture<'a, ()>;
}

/// Receives after which a message is parked as dead.
pub const MAX_RECEIVES: i64 = 5;
/// Seconds a received message stays invisible.
pub const VISIBILITY_SECS: i64 = 60;

/// The queue the configuration asks for: SQS when `IMS_QUEUE_URL` is set, else the database.
pub async fn queue(
    config: &crate::Config,
    db: &crate::db::Db,
    aws: &crate::aws::Shared,
) -> anyhow::Result<std::sync::Arc<dyn Queue>> {
    match &config.queue_url {
        None => Ok(std::sync::Arc::new(db_queue::DbQueue::new(db.clone()))),
        Some(raw) => {
            let url = crate::aws::queue_http_url(raw, config.aws_endpoint_url.as_ref())?;
            let sdk = aws.get(config).await?;
            Ok(std::sync::Arc::new(sqs::SqsQueue::new(sdk, url)))
        }
    }
}

/// The outbox worker's handler for [`KIND_EVENT`] and [`KIND_ALERT`] rows: hands the payload to
/// the queue or the alerts channel, then marks the row done. The outbox id is passed along as
/// the message id, so a retry after a crash does not duplicate the message where the target
/// deduplicates (the database queue does).
pub async fn relay(
    state: &crate::app::AppState,
    row: &outbox::Claimed,
) -> Result<(), crate::mail::SendError> {
    use crate::mail::SendError;
    let attributes = match row.kind.as_str() {
        KIND_EVENT => serde_json::from_str::<Event>(&row.payload)
            .map(|e| e.attributes())
            .map_err(|e| SendError::permanent(format!("unreadable event: {e}")))?,
        _ => serde_json::from_str::<serde_json::Value>(&row.payload)
            .ok()
            .and_then(|v| serde_json::from_value::<Attributes>(v["attributes"].clone()).ok())
            .ok_or_else(|| SendError::permanent("unreadable alert"))?,
    };
    let sent = if row.kind == KIND_EVENT {
        state.queue.send(&row.id, &row.payload, &attributes).await
    } else {
        state
            .alerts_channel
            .publish(&row.id, &row.payload, &attributes)
            .await
    };
    sent.map_err(|e| SendError::transient(e.to_string()))?;
    if let Err(e) = outbox::complete(state.db.pool(), &row.id).await {
        tracing::warn!(error = %crate::db::describe(&e), id = %row.id, "relayed, but could not mark it done");
    }
    if row.kind == KIND_EVENT {
        state.events_wake.notify_one();
    }
    Ok(())
}
