//! Account operations shared by `ims users create` and the admin API. Each runs in one write
//! transaction together with its audit events, so a failure leaves no half-made account and no
//! event for something that did not happen. Changes that must cut off issued access tokens bump
//! the user's auth version (see [`crate::auth::revocation`]); the caller's instance applies that
//! at once, the others within a poll interval. The "admins" lock row serialises every change
//! that could remove the last active ADMIN.

use secrecy::{ExposeSecret, SecretString};

use super::{by_email, by_id, email, User};
use crate::auth::audit::{self, kind, Event};
use crate::auth::otp::Purpose;
use crate::auth::password::Hasher;
use crate::auth::password_policy::{self, WeakPassword};
use crate::auth::revocation::{self, Revocations};
use crate::auth::roles::{self, Role};
use crate::auth::sessions;
use crate::auth::throttle::Throttle;
use crate::db::{self, Db};
use crate::mail::notify::Notifier;
use crate::mail::templates::CodeReason;

pub const MAX_NAME_CHARS: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("email is not a valid address")]
    InvalidEmail,
    #[error("name must be 1 to {MAX_NAME_CHARS} characters without control characters")]
    InvalidName,
    #[error("a user needs at least one role")]
    NoRoles,
    #[error("password {0}")]
    WeakPassword(WeakPassword),
    #[error("an account with this email already exists")]
    DuplicateEmail,
    #[error("no such user")]
    NotFound,
    #[error("this would leave no active ADMIN")]
    LastAdmin,
    #[error("this user's roles come from the identity provider's groups; change them there")]
    ManagedByProvider,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// The actor and client address of an admin action, for the audit trail.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    pub id: Option<&'a str>,
    pub ip: Option<&'a str>,
}

pub struct NewAccount {
    pub email: String,
    pub name: String,
    pub roles: Vec<Role>,
    pub password: Option<SecretString>,
    pub email_verified: bool,
}

/// Trims a display name and checks it.
pub fn clean_name(raw: &str) -> Result<String, AccountError> {
    let name = raw.trim();
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(AccountError::InvalidName);
    }
    Ok(name.to_owned())
}

/// Applies the password policy for this account.
pub fn check_password(
    password: &SecretString,
    email: &str,
    name: &str,
) -> Result<(), AccountError> {
    password_policy::check(password.expose_secret(), email, name)
        .map_err(AccountError::WeakPassword)
}

/// [`check_password`] on the blocking pool: the strength estimate can take tens of milliseconds.
pub async fn check_password_off_runtime(
    password: &SecretString,
    email: &str,
    name: &str,
) -> Result<(), AccountError> {
    let (password, email, name) = (password.clone(), email.to_owned(), name.to_owned());
    tokio::task::spawn_blocking(move || check_password(&password, &email, &name))
        .await
        .map_err(|e| AccountError::Other(e.into()))?
}

/// Creates an account. With a notifier (the admin API), the new user is emailed a code: to verify
/// the address when a password was set, or to set a password when none was.
pub async fn create(
    db: &Db,
    hasher: &Hasher,
    notifier: Option<&Notifier>,
    new: NewAccount,
    actor: Actor<'_>,
) -> Result<User, AccountError> {
    let email = email::normalize(&new.email).ok_or(AccountError::InvalidEmail)?;
    let name = clean_name(&new.name)?;
    let roles = roles::normalize(&new.roles);
    if roles.is_empty() {
        return Err(AccountError::NoRoles);
    }
    let hash = match &new.password {
        Some(pw) => {
            check_password_off_runtime(pw, &email, &name).await?;
            Some(hasher.hash(pw).await?)
        }
        None => None,
    };
    let now = crate::clock::now();
    let id = uuid::Uuid::now_v7().to_string();
    let mut tx = db.begin_write().await?;
    let inserted = sqlx::query(
        "INSERT INTO users (id, email, name, password_hash, roles, email_verified, disabled,
                            auth_version, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, 0, 1, $7, $7)",
    )
    .bind(&id)
    .bind(&email)
    .bind(&name)
    .bind(hash.as_deref())
    .bind(roles::to_db(&roles))
    .bind(i64::from(new.email_verified))
    .bind(now)
    .execute(&mut *tx)
    .await;
    match inserted {
        Err(e) if db::is_unique_violation(&e) => return Err(AccountError::DuplicateEmail),
        other => other?,
    };
    let event = Event::new(kind::USER_CREATED)
        .actor_opt(actor.id)
        .subject(&id)
        .ip(actor.ip)
        .detail(serde_json::json!({
            "roles": roles, "password_set": hash.is_some(), "email_verified": new.email_verified,
            "via": if actor.id.is_some() { "admin_api" } else { "cli" },
        }));
    audit::record(&mut *tx, event).await?;
    let user = by_id(&mut *tx, &id).await?.ok_or(AccountError::NotFound)?;
    if let Some(notifier) = notifier {
        let purpose = if hash.is_some() {
            Purpose::EmailVerification
        } else {
            Purpose::PasswordReset
        };
        notifier
            .send_code(&mut tx, &user, purpose, CodeReason::NewAccount, actor.ip)
            .await?;
    }
    tx.commit().await?;
    if let Some(notifier) = notifier {
        notifier.wake.notify_one();
    }
    Ok(user)
}

#[derive(Debug, Default)]
pub struct Patch {
    pub name: Option<String>,
    pub roles: Option<Vec<Role>>,
    pub disabled: Option<bool>,
}

pub async fn update(
    db: &Db,
    revocations: &Revocations,
    id: &str,
    patch: Patch,
    actor: Actor<'_>,
) -> Result<User, AccountError> {
    let name = patch.name.as_deref().map(clean_name).transpose()?;
    let new_roles = patch.roles.as_deref().map(roles::normalize);
    if new_roles.as_ref().is_some_and(Vec::is_empty) {
        return Err(AccountError::NoRoles);
    }
    let mut tx = db.begin_write().await?;
    db::Db::lock(&mut tx, "admins").await?;
    let user = by_id(&mut *tx, id).await?.ok_or(AccountError::NotFound)?;
    let mut events = Vec::new();
    let now = crate::clock::now();
    if let Some(name) = name.filter(|n| *n != user.name) {
        sqlx::query("UPDATE users SET name = $2, updated_at = $3 WHERE id = $1")
            .bind(id)
            .bind(&name)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        events.push((kind::USER_RENAMED, serde_json::json!({})));
    }
    let mut cut_off = false;
    if let Some(roles) = new_roles.filter(|r| *r != user.roles) {
        let external: Option<String> =
            sqlx::query_scalar("SELECT user_id FROM external_identities WHERE user_id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        if external.is_some() {
            return Err(AccountError::ManagedByProvider);
        }
        sqlx::query("UPDATE users SET roles = $2, updated_at = $3 WHERE id = $1")
            .bind(id)
            .bind(roles::to_db(&roles))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        events.push((
            kind::ROLES_CHANGED,
            serde_json::json!({"from": user.roles, "to": roles}),
        ));
        cut_off = true;
    }
    if let Some(disabled) = patch.disabled.filter(|d| *d != user.disabled) {
        sqlx::query("UPDATE users SET disabled = $2, updated_at = $3 WHERE id = $1")
            .bind(id)
            .bind(i64::from(disabled))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        if disabled {
            let revoked = sessions::revoke_all(&mut tx, id, None, "account disabled").await?;
            events.push((
                kind::USER_DISABLED,
                serde_json::json!({"sessions_revoked": revoked.len()}),
            ));
        } else {
            events.push((kind::USER_ENABLED, serde_json::json!({})));
        }
        cut_off = true;
    }
    if super::active_admins(&mut *tx).await? == 0 {
        tx.rollback().await?;
        return Err(AccountError::LastAdmin);
    }
    let version = if cut_off {
        Some(revocation::user_changed(&mut tx, id).await?)
    } else {
        None
    };
    for (kind, detail) in events {
        let e = Event::new(kind)
            .actor_opt(actor.id)
            .subject(id)
            .ip(actor.ip)
            .detail(detail);
        audit::record(&mut *tx, e).await?;
    }
    tx.commit().await?;
    if let Some(v) = version {
        revocations.note_user(id, v);
    }
    by_id(db.pool(), id).await?.ok_or(AccountError::NotFound)
}

/// Revokes every session and every access token of the user.
pub async fn revoke_sessions(
    db: &Db,
    revocations: &Revocations,
    id: &str,
    actor: Actor<'_>,
) -> Result<(), AccountError> {
    let mut tx = db.begin_write().await?;
    by_id(&mut *tx, id).await?.ok_or(AccountError::NotFound)?;
    let revoked = sessions::revoke_all(&mut tx, id, None, "revoked by admin").await?;
    let version = revocation::user_changed(&mut tx, id).await?;
    let e = Event::new(kind::SESSIONS_REVOKED)
        .actor_opt(actor.id)
        .subject(id)
        .ip(actor.ip)
        .detail(serde_json::json!({"sessions_revoked": revoked.len()}));
    audit::record(&mut *tx, e).await?;
    tx.commit().await?;
    revocations.note_user(id, version);
    Ok(())
}

/// Clears a login lock on the account's email.
pub async fn unlock(
    db: &Db,
    throttle: &Throttle,
    id: &str,
    actor: Actor<'_>,
) -> Result<(), AccountError> {
    let mut tx = db.begin_write().await?;
    let user = by_id(&mut *tx, id).await?.ok_or(AccountError::NotFound)?;
    let was_locked = throttle.clear(&mut *tx, &user.email).await?;
    let e = Event::new(kind::LOGIN_UNLOCKED)
        .actor_opt(actor.id)
        .subject(id)
        .ip(actor.ip)
        .detail(serde_json::json!({"had_failures": was_locked}));
    audit::record(&mut *tx, e).await?;
    tx.commit().await?;
    Ok(())
}

/// Looks a user up by (normalised) email.
pub async fn find_by_email(db: &Db, raw: &str) -> Result<Option<User>, sqlx::Error> {
    match email::normalize(raw) {
        Some(e) => by_email(db.pool(), &e).await,
        None => Ok(None),
    }
}
