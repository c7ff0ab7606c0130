//! The outbox table: side effects written in the same transaction as the change that causes them,
//! delivered by [`super::worker`]. Mail payloads are sealed with AES-256-GCM under a key derived
//! from `OTP_PEPPER` (the outbox id is the associated data), because they carry one-time codes until
//! sent; a sent message's payload is wiped.
//!
//! Delivery is at-least-once, and duplicates are bounded: a worker claims a row by setting a
//! 60-second lease in one conditional `UPDATE`, so two workers (or instances) never hold the same
//! row; the row is marked sent right after the transport accepts it. Only a crash between the
//! transport's acceptance and that mark (a window of one database write) can deliver a message
//! twice; the `file` transport even then overwrites the same file.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::hkdf;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use sqlx::{Any, Transaction};
use utoipa::ToSchema;

use super::MailContent;
use crate::db::Db;

pub const KIND_MAIL: &str = "mail";
pub const KIND_CODE_REQUEST: &str = "code_request";
pub const LEASE_SECS: i64 = 60;
pub const MAX_ATTEMPTS: i64 = 8;

/// Encrypts and decrypts mail payloads.
pub struct Sealer {
    key: LessSafeKey,
}

impl Sealer {
    pub fn new(pepper: &SecretString) -> anyhow::Result<Self> {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"ims-outbox")
            .extract(pepper.expose_secret().as_bytes());
        let okm = prk
            .expand(&[b"outbox-payload-v1"], &AES_256_GCM)
            .map_err(|_| anyhow::anyhow!("key derivation failed"))?;
        let key = UnboundKey::from(okm);
        Ok(Self {
            key: LessSafeKey::new(key),
        })
    }

    pub fn seal(&self, id: &str, content: &MailContent) -> anyhow::Result<String> {
        let nonce_bytes = crate::auth::random_bytes::<NONCE_LEN>()?;
        let mut data = serde_json::to_vec(content)?;
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(id.as_bytes()),
                &mut data,
            )
            .map_err(|_| anyhow::anyhow!("sealing failed"))?;
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&data);
        Ok(STANDARD.encode(out))
    }

    pub fn open(&self, id: &str, sealed: &str) -> anyhow::Result<MailContent> {
        let raw = STANDARD
            .decode(sealed)
            .map_err(|_| anyhow::anyhow!("payload is not base64"))?;
        if raw.len() < NONCE_LEN {
            anyhow::bail!("payload too short");
        }
        let (nonce, rest) = raw.split_at(NONCE_LEN);
        let nonce =
            Nonce::try_assume_unique_for_key(nonce).map_err(|_| anyhow::anyhow!("bad nonce"))?;
        let mut data = rest.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(id.as_bytes()), &mut data)
            .map_err(|_| anyhow::anyhow!("payload cannot be opened (was OTP_PEPPER changed?)"))?;
        Ok(serde_json::from_slice(plain)?)
    }
}

/// Queues a mail in the caller's transaction.
pub async fn enqueue_mail(
    tx: &mut Transaction<'static, Any>,
    sealer: &Sealer,
    template: &str,
    content: &MailContent,
) -> anyhow::Result<String> {
    let id = uuid::Uuid::now_v7().to_string();
    let payload = sealer.seal(&id, content)?;
    insert(&mut **tx, &id, KIND_MAIL, template, &content.to, &payload).await?;
    Ok(id)
}

/// Queues a background job in the caller's transaction (or on its own connection).
pub async fn insert<'e, E>(
    exec: E,
    id: &str,
    kind: &str,
    template: &str,
    recipient: &str,
    payload: &str,
) -> Result<(), sqlx::Error>
where
    E: sqlx::Executor<'e, Database = Any>,
{
    let now = crate::clock::now();
    sqlx::query(
        "INSERT INTO outbox (id, kind, template, recipient, payload, status, attempts,
                             next_attempt_at, lease_until, created_at)
         VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, 0, $6)",
    )
    .bind(id)
    .bind(kind)
    .bind(template)
    .bind(recipient)
    .bind(payload)
    .bind(now)
    .execute(exec)
    .await
    .map(|_| ())
}

#[derive(Debug)]
pub struct Claimed {
    pub id: String,
    pub kind: String,
    pub template: String,
    pub recipient: String,
    pub payload: String,
    pub attempts: i64,
}

/// Claims the next due row, if any, under a lease.
pub async fn claim(db: &Db) -> Result<Option<Claimed>, sqlx::Error> {
    let now = crate::clock::now();
    // On PostgreSQL, SKIP LOCKED lets concurrent workers pass over a row another is claiming
    // instead of queueing behind it; SQLite serialises writers anyway.
    let lock = match db.backend() {
        crate::db::Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        crate::db::Backend::Sqlite => "",
    };
    let sql = format!(
        "UPDATE outbox SET lease_until = $2, attempts = attempts + 1
         WHERE id = (SELECT id FROM outbox
                     WHERE status = 'pending' AND next_attempt_at <= $1 AND lease_until < $1
                     ORDER BY next_attempt_at, id LIMIT 1{lock})
           AND status = 'pending' AND lease_until < $1
         RETURNING id, kind, template, recipient, payload, attempts"
    );
    let row: Option<(String, String, String, String, String, i64)> = sqlx::query_as(&sql)
        .bind(now)
        .bind(now + LEASE_SECS)
        .fetch_optional(db.pool())
        .await?;
    Ok(row.map(
        |(id, kind, template, recipient, payload, attempts)| Claimed {
            id,
            kind,
            template,
            recipient,
            payload,
            attempts,
        },
    ))
}

/// Marks a row done (and wipes its payload). Returns false if the lease was lost meanwhile.
pub async fn complete<'e, E>(exec: E, id: &str) -> Result<bool, sqlx::Error>
where
    E: sqlx::Executor<'e, Database = Any>,
{
    let done = sqlx::query(
        "UPDATE outbox SET status = 'sent', payload = '', done_at = $2, lease_until = 0, last_error = NULL
         WHERE id = $1 AND status = 'pending'",
    )
    .bind(id)
    .bind(crate::clock::now())
    .execute(exec)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Seconds to wait before attempt `n + 1`: 5 s doubling, capped at 15 minutes.
pub fn backoff(attempts: i64) -> i64 {
    let exp = attempts.clamp(1, 12) - 1;
    (5i64 << exp).min(900)
}

/// Schedules a retry, or marks the row failed when attempts are used up or the error is permanent.
/// Returns true when the row is now failed.
pub async fn defer(
    db: &Db,
    row: &Claimed,
    error: &str,
    permanent: bool,
) -> Result<bool, sqlx::Error> {
    let now = crate::clock::now();
    // Mail gives up after MAX_ATTEMPTS (an admin can retry it); events and alerts wait out any
    // outage of the queue or channel, retrying every 15 minutes at most.
    let gives_up = row.kind == KIND_MAIL || row.kind == KIND_CODE_REQUEST;
    let failed = permanent || (gives_up && row.attempts >= MAX_ATTEMPTS);
    let error: String = error.chars().take(300).collect();
    sqlx::query(
        "UPDATE outbox SET status = $2, next_attempt_at = $3, lease_until = 0, last_error = $4,
                           done_at = $5
         WHERE id = $1 AND status = 'pending'",
    )
    .bind(&row.id)
    .bind(if failed { "failed" } else { "pending" })
    .bind(now + backoff(row.attempts))
    .bind(&error)
    .bind(if failed { Some(now) } else { None })
    .execute(db.pool())
    .await?;
    Ok(failed)
}

/// A failed message as admins see it: no body, so no code.
#[derive(Debug, Serialize, ToSchema)]
pub struct FailedMail {
    pub id: String,
    pub template: String,
    pub recipient: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    /// RFC 3339
    pub created_at: String,
    /// RFC 3339
    pub failed_at: Option<String>,
}

type FailedRow = (
    String,
    String,
    String,
    i64,
    Option<String>,
    i64,
    Option<i64>,
);

pub async fn failed(
    db: &Db,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<FailedMail>, sqlx::Error> {
    let rows: Vec<FailedRow> = sqlx::query_as(
        "SELECT id, template, recipient, attempts, last_error, created_at, done_at FROM outbox
         WHERE status = 'failed' AND kind = 'mail' AND id > $1 ORDER BY id LIMIT $2",
    )
    .bind(after.unwrap_or(""))
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(id, template, recipient, attempts, last_error, created_at, done_at)| FailedMail {
                id,
                template,
                recipient,
                attempts,
                last_error,
                created_at: crate::clock::rfc3339(created_at),
                failed_at: done_at.map(crate::clock::rfc3339),
            },
        )
        .collect())
}

/// Puts a failed message back in the queue with fresh attempts; false if it is not failed.
pub async fn retry_failed<'e, E>(exec: E, id: &str) -> Result<bool, sqlx::Error>
where
    E: sqlx::Executor<'e, Database = Any>,
{
    let done = sqlx::query(
        "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = $2, lease_until = 0,
                           done_at = NULL
         WHERE id = $1 AND status = 'failed' AND kind = 'mail'",
    )
    .bind(id)
    .bind(crate::clock::now())
    .execute(exec)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Deletes delivered rows after a week.
pub async fn prune(db: &Db) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM outbox WHERE status = 'sent' AND done_at < $1")
        .bind(crate::clock::now() - 7 * 86_400)
        .execute(db.pool())
        .await
        .map(|_| ())
}

/// Drops a queued, not yet claimed mail of this template to this address: a newer code replaces it.
pub async fn drop_pending(
    tx: &mut Transaction<'static, Any>,
    recipient: &str,
    template: &str,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM outbox WHERE kind = 'mail' AND status = 'pending' AND recipient = $1
           AND template = $2 AND lease_until < $3",
    )
    .bind(recipient)
    .bind(template)
    .bind(crate::clock::now())
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_payloads_round_trip_only_with_the_same_key_and_id() {
        let content = MailContent {
            to: "a@b.example".into(),
            subject: "s".into(),
            text: "code 123456".into(),
            html: "<p>123456</p>".into(),
        };
        let a = Sealer::new(&SecretString::from("pepper-a")).unwrap();
        let b = Sealer::new(&SecretString::from("pepper-b")).unwrap();
        let sealed = a.seal("id-1", &content).unwrap();
        assert!(!sealed.contains("123456"));
        assert_eq!(a.open("id-1", &sealed).unwrap().text, "code 123456");
        assert!(b.open("id-1", &sealed).is_err());
        assert!(a.open("id-2", &sealed).is_err());
    }

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(1), 5);
        assert_eq!(backoff(2), 10);
        assert_eq!(backoff(4), 40);
        assert_eq!(backoff(20), 900);
    }
}
