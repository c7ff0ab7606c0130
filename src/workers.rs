//! Background workers of `ims serve`: the revocation-feed poller (every second), the outbox worker
//! (mail, code requests, events and alerts, see [`crate::mail::worker`]), the event consumer
//! ([`crate::events::consumer`]), the secret-store refresh ([`crate::secrets::refresh`], when
//! `IMS_SECRETS_ID` is set), the database probe while it is unreachable ([`crate::db::health`]) and housekeeping (expired sessions,
//! throttle counters, feed rows and delivered mail, and yesterday's production reports, every ten
//! minutes). Each stops when the
//! shutdown signal flips; a failing round is logged and retried on the next tick, so a database
//! outage pauses them without killing them.

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::app::AppState;
use crate::auth::revocation::POLL_INTERVAL;
use crate::auth::sessions;

const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(600);

pub fn spawn(state: AppState, stop: watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    let poll_state = state.clone();
    let poller = tokio::spawn(every(POLL_INTERVAL, stop.clone(), move || {
        let state = poll_state.clone();
        async move {
            if let Err(e) = state.revocations.poll(&state.db).await {
                tracing::warn!(error = %crate::db::describe(&e), "revocation poll failed");
            }
        }
    }));
    let housekeeping_state = state.clone();
    let housekeeping = tokio::spawn(every(HOUSEKEEPING_INTERVAL, stop.clone(), move || {
        let state = housekeeping_state.clone();
        async move {
            let results = [
                sessions::prune(&state.db).await,
                state.throttle.prune(&state.db).await,
                state.revocations.prune(&state.db).await,
                crate::mail::outbox::prune(&state.db).await,
            ];
            for e in results.into_iter().filter_map(Result::err) {
                tracing::warn!(error = %crate::db::describe(&e), "housekeeping failed");
            }
            match crate::production::reports::daily(&state).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(reports = n, "daily production reports written"),
                Err(e) => tracing::warn!(error = %e, "daily production reports failed"),
            }
        }
    }));
    let mail = tokio::spawn(crate::mail::worker::run(
        state.clone(),
        state.mail_transport.clone(),
        state.mail_sender.clone(),
        stop.clone(),
    ));
    let events = tokio::spawn(crate::events::consumer::run(state.clone(), stop.clone()));
    let health = tokio::spawn(crate::db::health::watch(state.db.clone(), stop.clone()));
    let mut workers = vec![poller, housekeeping, mail, events, health];
    if let Some(store) = state.secret_store.clone() {
        workers.push(tokio::spawn(crate::secrets::refresh::run(
            state.clone(),
            store,
            stop.clone(),
        )));
    }
    workers
}

async fn every<F, Fut>(period: Duration, mut stop: watch::Receiver<bool>, mut round: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => round().await,
            _ = stop.changed() => return,
        }
    }
}
