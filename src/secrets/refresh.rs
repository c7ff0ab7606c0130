//! Rotation without restart: the `IMS_SECRETS_ID` secret is read again every
//! `IMS_SECRETS_REFRESH` and what can change while running is applied at once:
//!
//! - a new `JWT_SIGNING_KEYS` set replaces the key ring — its newest active key signs and every
//!   listed key verifies. Instances read the store at different moments, so a key first seen
//!   here starts signing one refresh interval after it is read at the earliest (by then every
//!   instance verifies it), and a key dropped from the set keeps verifying for one access-token
//!   lifetime plus one interval (and signs only while no key of the set is active yet): a
//!   rotation, even one replacing the whole set, logs nobody out on any instance;
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
use crate::auth::keys::SigningKey;

/// The values taken from the store at start, by name: what later reads are compared with.
pub fn initial(state: &AppState) -> HashMap<&'static str, SecretString> {
    state
        .config
        .secrets
        .by_name()
        .into_iter()
        .filter_map(|(name, r)| match r {
            Some(r) if matches!(r.source, Source::Store(_)) => Some((name, r.value.clone())),
            _ => None,
        })
        .collect()
}

/// What the refresh has applied so far.
pub struct Applied {
    /// The values taken from the store, by name: what later reads are compared with.
    values: HashMap<&'static str, SecretString>,
    /// The signing keys in use, and keys dropped from the set with the time they stop verifying.
    keys: Vec<SigningKey>,
    retired: Vec<(SigningKey, i64)>,
}

impl Applied {
    pub fn new(state: &AppState) -> Self {
        let values = initial(state);
        let keys = values
            .get("JWT_SIGNING_KEYS")
            .and_then(|v| crate::auth::keys::parse_key_set(v).ok())
            .unwrap_or_default();
        Self {
            values,
            keys,
            retired: Vec::new(),
        }
    }
}

/// Slack for the time one refresh round takes and for clocks (tasks keep NTP time).
const CLOCK_MARGIN_SECS: i64 = 5;

/// Moves the keys of `current` that `next` drops to `retired` (verifying until `until`), and takes
/// back from `retired` any key `next` lists again.
fn retire(
    current: Vec<SigningKey>,
    next: &[SigningKey],
    retired: &mut Vec<(SigningKey, i64)>,
    until: i64,
) {
    let listed = |kid: &str| next.iter().any(|k| k.kid == kid);
    retired.retain(|(k, _)| !listed(&k.kid));
    retired.extend(
        current
            .into_iter()
            .filter(|k| !listed(&k.kid))
            .map(|k| (k, until)),
    );
}

/// Drops retired keys whose tokens have all expired; true when any went.
fn prune(retired: &mut Vec<(SigningKey, i64)>, now: i64) -> bool {
    let before = retired.len();
    retired.retain(|(_, until)| *until > now);
    retired.len() != before
}

fn retired_keys(retired: &[(SigningKey, i64)]) -> Vec<SigningKey> {
    retired.iter().map(|(k, _)| k.clone()).collect()
}

/// Reads the secret every `IMS_SECRETS_REFRESH` until `stop` flips.
pub async fn run(state: AppState, store: Store, mut stop: watch::Receiver<bool>) {
    let mut applied = Applied::new(&state);
    let mut ticker = tokio::time::interval(state.config.secrets_refresh);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => return,
        }
        if prune(&mut applied.retired, crate::clock::now()) {
            let retired = retired_keys(&applied.retired);
            if let Err(e) = state.tokens.rotate_with(&applied.keys, &retired) {
                tracing::error!(error = %e, "retired signing keys not dropped");
            }
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
pub async fn apply(state: &AppState, snapshot: &Snapshot, applied: &mut Applied) {
    let names: Vec<&'static str> = applied.values.keys().copied().collect();
    for name in names {
        let Some(value) = snapshot.get(name) else {
            tracing::warn!(secrets = %snapshot.id, key = name, "key removed from the secret store; keeping the value in use");
            continue;
        };
        if applied
            .values
            .get(name)
            .is_some_and(|old| old.expose_secret() == value.expose_secret())
        {
            continue;
        }
        // Remember it even when refused, so a bad value is reported once, not every round.
        applied.values.insert(name, value.clone());
        let secret = snapshot.origin(name).unwrap_or(&snapshot.id);
        if name == "DATABASE_PASSWORD" {
            if let Err(e) = crate::config::check_database_user(snapshot, &state.config.database_url)
            {
                tracing::error!(secret, error = %e, "rotated database password refused");
                continue;
            }
        }
        match change(state, applied, name, value) {
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
    applied: &mut Applied,
    name: &str,
    value: &SecretString,
) -> anyhow::Result<Option<serde_json::Value>> {
    match name {
        "JWT_SIGNING_KEYS" => {
            let mut keys = crate::auth::keys::parse_key_set(value)?;
            let now = crate::clock::now();
            let interval = state.config.secrets_refresh.as_secs() as i64;
            let known = |kid: &str| {
                applied.keys.iter().any(|k| k.kid == kid)
                    || applied.retired.iter().any(|(k, _)| k.kid == kid)
            };
            let earliest = now + interval + CLOCK_MARGIN_SECS;
            for key in keys.iter_mut().filter(|k| !known(&k.kid)) {
                key.created_at = key.created_at.max(earliest);
            }
            keys.sort_by_key(|k| std::cmp::Reverse(k.created_at));
            let until = earliest + state.tokens.ttl().as_secs() as i64;
            let mut retired = applied.retired.clone();
            retire(applied.keys.clone(), &keys, &mut retired, until);
            state.tokens.rotate_with(&keys, &retired_keys(&retired))?;
            let kids: Vec<&str> = keys.iter().map(|k| k.kid.as_str()).collect();
            let retiring: Vec<&str> = retired.iter().map(|(k, _)| k.kid.as_str()).collect();
            let detail = serde_json::json!({ "kids": kids, "verifying_until_expiry": retiring });
            applied.keys = keys;
            applied.retired = retired;
            Ok(Some(detail))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::keys::{generate_key_set, parse_key_set};

    fn keys(n: usize) -> Vec<SigningKey> {
        let mut doc = generate_key_set(None).unwrap();
        for _ in 1..n {
            doc = generate_key_set(Some(&doc)).unwrap();
        }
        parse_key_set(&doc).unwrap()
    }

    #[test]
    fn dropped_keys_verify_until_their_tokens_expire_and_come_back_when_listed_again() {
        let all = keys(3);
        let (a, b, c) = (all[0].clone(), all[1].clone(), all[2].clone());
        let mut retired = Vec::new();
        // {a, b} → {c}: a and b retire until 100.
        retire(
            vec![a.clone(), b.clone()],
            std::slice::from_ref(&c),
            &mut retired,
            100,
        );
        let mut kids: Vec<&str> = retired.iter().map(|(k, _)| k.kid.as_str()).collect();
        kids.sort();
        let mut expected = vec![a.kid.as_str(), b.kid.as_str()];
        expected.sort();
        assert_eq!(kids, expected);
        // {c} → {c, b}: b is current again; c is not retired.
        retire(vec![c.clone()], &[c.clone(), b.clone()], &mut retired, 200);
        assert_eq!(retired.len(), 1);
        assert_eq!(retired[0].0.kid, a.kid);
        assert!(!prune(&mut retired, 99), "still valid at 99");
        assert!(
            prune(&mut retired, 100),
            "gone once its tokens have expired"
        );
        assert!(retired.is_empty());
    }
}
