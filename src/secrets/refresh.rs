//! Rotation without restart: the `IMS_SECRETS_ID` secret is read again every
//! `IMS_SECRETS_REFRESH` and what can change while running is applied at once:
//!
//! - a new `JWT_SIGNING_KEYS` set replaces the key ring — its newest active key signs and every
//!   listed key keeps verifying, so nobody is logged out by a rotation;
//! - a new `DATABASE_PASSWORD` is used for every connection the pool opens from then on.
//!
//! A value that fails to parse is refused and the one in use is kept. `OTP_PEPPER`,
//! `SMTP_PASSWORD` and `AI_API_KEY` are read at start (changing the pepper would invalidate codes
//! and sealed mail in flight); a change is logged as taking effect at the next restart. A failed
//! read keeps everything in use. Logs and audit entries name the secret and key ids, never values.

use std::collections::HashMap;

use secrecy::{ExposeSecret, SecretString};
use tokio::sync::watch;

use super::store::{Snapshot, Store};
use super::Source;
use crate::app::AppState;
use crate::auth::audit::{self, kind, Event};

/// The values taken from the store at start, by name: what later reads are compared with.
pub fn initial(state: &AppState) -> HashMap<&'static str, SecretString> {
    let s = &state.config.secrets;
    [
        ("JWT_SIGNING_KEYS", &s.jwt_signing_keys),
        ("OTP_PEPPER", &s.otp_pepper),
        ("SMTP_PASSWORD", &s.smtp_password),
        ("DATABASE_PASSWORD", &s.database_password),
        ("AI_API_KEY", &s.ai_api_key),
    ]
    .into_iter()
    .filter_map(|(name, r)| match r {
        Some(r) if matches!(r.source, Source::Store(_)) => Some((name, r.value.clone())),
        _ => None,
    })
    .collect()
}

/// Reads the secret every `IMS_SECRETS_REFRESH` until `stop` flips.
pub async fn run(state: AppState, store: Store, mut stop: watch::Receiver<bool>) {
    let mut applied = initial(&state);
    let mut ticker = tokio::time::interval(state.config.secrets_refresh);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => return,
        }
        match store.fetch().await {
            Ok(snapshot) => apply(&state, &snapshot, &mut applied).await,
            Err(e) => {
                tracing::warn!(error = %e, "secret store not read; keeping the secrets in use")
            }
        }
    }
}

/// Applies every value that changed since the last read.
pub async fn apply(
    state: &AppState,
    snapshot: &Snapshot,
    applied: &mut HashMap<&'static str, SecretString>,
) {
    let names: Vec<&'static str> = applied.keys().copied().collect();
    for name in names {
        let Some(value) = snapshot.get(name) else {
            tracing::warn!(secrets = %snapshot.id, key = name, "key removed from the secret store; keeping the value in use");
            continue;
        };
        if applied
            .get(name)
            .is_some_and(|old| old.expose_secret() == value.expose_secret())
        {
            continue;
        }
        // Remember it even when refused, so a bad value is reported once, not every round.
        applied.insert(name, value.clone());
        let secret = snapshot.origin(name).unwrap_or(&snapshot.id);
        match change(state, name, value) {
            Ok(Some(detail)) => {
                tracing::info!(secret, key = name, "rotated secret applied");
                let event = Event::new(kind::SECRET_ROTATED).detail(serde_json::json!({
                    "secret": secret, "key": name, "version": snapshot.version(name), "detail": detail,
                }));
                if let Err(e) = audit::record(state.db.pool(), event).await {
                    tracing::warn!(error = %crate::db::describe(&e), "secret rotation not audited");
                }
            }
            Ok(None) => tracing::warn!(
                secret,
                key = name,
                "secret changed in the store; it takes effect at the next restart"
            ),
            Err(e) => tracing::error!(
                secret,
                key = name,
                error = %e,
                "rotated secret refused; keeping the value in use"
            ),
        }
    }
}

/// Applies one changed value; `Ok(None)` when it only takes effect at restart.
fn change(
    state: &AppState,
    name: &str,
    value: &SecretString,
) -> anyhow::Result<Option<serde_json::Value>> {
    match name {
        "JWT_SIGNING_KEYS" => {
            let keys = crate::auth::keys::parse_key_set(value)?;
            state.tokens.rotate(&keys)?;
            let kids: Vec<&str> = keys.iter().map(|k| k.kid.as_str()).collect();
            Ok(Some(serde_json::json!({ "kids": kids })))
        }
        "DATABASE_PASSWORD" => {
            if value.expose_secret().trim().is_empty() {
                anyhow::bail!("secret DATABASE_PASSWORD: the value is empty");
            }
            state.db.use_password(value)?;
            Ok(Some(serde_json::json!({ "applies_to": "new connections" })))
        }
        _ => Ok(None),
    }
}
