//! The outbox worker inside `ims serve`. It claims due rows one at a time under a lease and handles
//! up to [`CONCURRENCY`] at once: a code request is decided and completed in one transaction (so it
//! takes effect exactly once); a mail is opened, built and handed to the transport, then marked sent.
//! Failures are retried with exponential backoff; after [`super::outbox::MAX_ATTEMPTS`] (or at once
//! for a permanent refusal) the message is marked failed and an audit event is written. It wakes on
//! new work queued by this instance and polls every second for work queued by others.

use std::sync::Arc;
use std::time::Duration;

use lettre::message::Mailbox;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::outbox::{self, Claimed};
use super::{message, Transport};
use crate::app::AppState;
use crate::auth::audit::{self, Event};

pub const CONCURRENCY: usize = 4;
const IDLE_POLL: Duration = Duration::from_secs(1);

/// Sender identity for outgoing mail.
#[derive(Clone)]
pub struct Sender {
    pub from: Mailbox,
    pub domain: String,
}

pub async fn run(
    state: AppState,
    transport: Arc<dyn Transport>,
    sender: Sender,
    mut stop: watch::Receiver<bool>,
) {
    let mut running: JoinSet<()> = JoinSet::new();
    loop {
        if *stop.borrow() {
            break;
        }
        let mut claimed_any = false;
        while running.len() < CONCURRENCY {
            match outbox::claim(&state.db).await {
                Ok(Some(row)) => {
                    claimed_any = true;
                    let (state, transport, sender) =
                        (state.clone(), transport.clone(), sender.clone());
                    running.spawn(
                        async move { handle(&state, transport.as_ref(), &sender, row).await },
                    );
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %crate::db::describe(&e), "outbox claim failed");
                    break;
                }
            }
        }
        if running.is_empty() {
            tokio::select! {
                _ = state.notifier.wake.notified() => {},
                _ = tokio::time::sleep(IDLE_POLL) => {},
                _ = stop.changed() => {},
            }
        } else if !claimed_any || running.len() >= CONCURRENCY {
            tokio::select! {
                _ = running.join_next() => {},
                _ = state.notifier.wake.notified(), if running.len() < CONCURRENCY => {},
                _ = tokio::time::sleep(IDLE_POLL), if running.len() < CONCURRENCY => {},
                _ = stop.changed() => {},
            }
        }
    }
    // Finish what was started; unstarted rows stay queued for the next start.
    while running.join_next().await.is_some() {}
}

async fn handle(state: &AppState, transport: &dyn Transport, sender: &Sender, row: Claimed) {
    let outcome = match row.kind.as_str() {
        outbox::KIND_CODE_REQUEST => fulfil(state, &row).await,
        outbox::KIND_MAIL => deliver(state, transport, sender, &row).await,
        crate::events::KIND_EVENT | crate::events::KIND_ALERT => {
            crate::events::relay(state, &row).await
        }
        other => Err(crate::mail::SendError::permanent(format!(
            "unknown outbox kind {other}"
        ))),
    };
    let Err(error) = outcome else {
        return;
    };
    match outbox::defer(&state.db, &row, &error.reason, error.permanent).await {
        Ok(true) if row.kind != outbox::KIND_MAIL && row.kind != outbox::KIND_CODE_REQUEST => {
            tracing::error!(id = %row.id, kind = %row.kind, reason = %error.reason, "outbox job dropped: it can never succeed");
        }
        Ok(true) => {
            tracing::error!(id = %row.id, template = %row.template, reason = %error.reason, "message failed for good");
            let event = Event::new(crate::auth::audit::kind::MAIL_FAILED).detail(serde_json::json!({
                "outbox_id": row.id, "template": row.template, "attempts": row.attempts, "reason": error.reason,
            }));
            if let Err(e) = audit::record(state.db.pool(), event).await {
                tracing::warn!(error = %crate::db::describe(&e), "could not audit a failed message");
            }
        }
        Ok(false) => {
            tracing::warn!(id = %row.id, attempts = row.attempts, reason = %error.reason, "delivery failed; will retry");
        }
        Err(e) => {
            tracing::warn!(error = %crate::db::describe(&e), "could not reschedule; the lease will expire")
        }
    }
}

async fn deliver(
    state: &AppState,
    transport: &dyn Transport,
    sender: &Sender,
    row: &Claimed,
) -> Result<(), crate::mail::SendError> {
    use crate::mail::SendError;
    let content = state
        .notifier
        .sealer
        .open(&row.id, &row.payload)
        .map_err(|e| SendError::permanent(e.to_string()))?;
    let built = message::build(&row.id, &sender.from, &sender.domain, &content)?;
    transport.send(&row.id, &built).await?;
    match outbox::complete(state.db.pool(), &row.id).await {
        Ok(_) => {
            tracing::info!(id = %row.id, template = %row.template, transport = transport.name(), "mail sent");
            Ok(())
        }
        Err(e) => {
            // Sent but not marked: the lease expires and it is sent again (the bounded duplicate).
            tracing::warn!(error = %crate::db::describe(&e), id = %row.id, "sent, but could not mark it sent");
            Ok(())
        }
    }
}

async fn fulfil(state: &AppState, row: &Claimed) -> Result<(), crate::mail::SendError> {
    use crate::mail::SendError;
    let work = async {
        let mut tx = state.db.begin_write().await?;
        let sent = crate::mail::notify::fulfil_code_request(
            &mut tx,
            &state.notifier,
            &state.throttle,
            &row.payload,
        )
        .await?;
        if !outbox::complete(&mut *tx, &row.id).await? {
            tx.rollback().await?;
            return Ok::<bool, anyhow::Error>(false);
        }
        tx.commit().await?;
        Ok(sent)
    };
    match work.await {
        Ok(true) => {
            state.notifier.wake.notify_one();
            Ok(())
        }
        Ok(false) => Ok(()),
        Err(e) => Err(SendError::transient(format!(
            "code request failed: {}",
            short(&e)
        ))),
    }
}

fn short(e: &anyhow::Error) -> String {
    match e.downcast_ref::<sqlx::Error>() {
        Some(db) => crate::db::describe(db),
        None => e.to_string().chars().take(200).collect(),
    }
}
