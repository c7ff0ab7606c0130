//! The queue consumer: receives execution events, lets the alert rules judge them, and deletes
//! each message only after it was handled. Handlers are idempotent (an alert is keyed by rule
//! and occurrence), so a message delivered twice has one effect. Besides events, a periodic
//! sweep raises what only the passing of time reveals: a line down too long, an order slipping.

use std::time::Duration;

use tokio::sync::watch;

use super::Event;
use crate::app::AppState;
use crate::production::alerts;

const IDLE_POLL: Duration = Duration::from_millis(500);
const SWEEP_EVERY: Duration = Duration::from_secs(30);

pub async fn run(state: AppState, mut stop: watch::Receiver<bool>) {
    let mut last_sweep = tokio::time::Instant::now() - SWEEP_EVERY;
    loop {
        if *stop.borrow() {
            break;
        }
        if last_sweep.elapsed() >= SWEEP_EVERY {
            last_sweep = tokio::time::Instant::now();
            if let Err(e) = alerts::sweep(&state).await {
                tracing::warn!(error = %format!("{e:#}"), "alert sweep failed");
            }
        }
        let batch = match state.queue.receive(10).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "queue receive failed");
                Vec::new()
            }
        };
        let idle = batch.is_empty();
        for message in batch {
            let handled = match serde_json::from_str::<Event>(&message.body) {
                Ok(event) => alerts::on_event(&state, &event)
                    .await
                    .map_err(|e| format!("{e:#}")),
                // A poison message: left undeleted, it is redelivered until the queue parks
                // it in the dead-letter store after its maximum receives.
                Err(e) => Err(format!("unreadable message: {e}")),
            };
            match handled {
                Ok(()) => {
                    if let Err(e) = state.queue.delete(&message).await {
                        tracing::warn!(error = %e, "could not delete a handled message; it will be handled again");
                    }
                }
                Err(e) => {
                    tracing::warn!(id = %message.id, receives = message.receive_count, error = %e,
                    "event handling failed; it will be retried")
                }
            }
        }
        if idle {
            tokio::select! {
                _ = state.events_wake.notified() => {},
                _ = tokio::time::sleep(IDLE_POLL) => {},
                _ = stop.changed() => {},
            }
        }
    }
}
