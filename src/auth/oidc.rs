//! An external identity provider (Amazon Cognito): its access tokens are accepted as bearer
//! tokens beside IMS's own. Only RS256, only with a key from the provider's JWKS (fetched from
//! the configured URL, cached, refetched on an unknown `kid` at most once a minute — never from
//! the token's own headers); `iss`, `exp`, `token_use = access` and `client_id` are checked.
//! Roles come only from `cognito:groups` through the exact configured map: an unknown group
//! gives no role, and no role is 403 everywhere. Users are identified by (`iss`, `sub`), never
//! by email, and provisioned on first use so ADMIN sees and can disable them. Without keys the
//! provider's tokens are refused (fail closed); IMS's own tokens are unaffected.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::roles::{self, Role};
use crate::config::Config;
use crate::db::Db;

/// Least time between two JWKS fetches triggered by unknown key ids.
const REFETCH_AFTER: Duration = Duration::from_secs(60);
/// Keys are refreshed this often even when every `kid` is known.
const MAX_AGE: Duration = Duration::from_secs(3600);
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest JWKS document accepted.
const MAX_JWKS_BYTES: usize = 256 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Rejected {
    #[error("not a token of the identity provider")]
    Malformed,
    #[error("algorithm not allowed")]
    Algorithm,
    #[error("no key for this kid")]
    UnknownKey,
    #[error("signature or claims invalid")]
    Invalid,
    #[error("not an access token")]
    NotAccessToken,
    #[error("issued to another client")]
    WrongClient,
}

#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    token_use: String,
    iat: i64,
    client_id: Option<String>,
    username: Option<String>,
    #[serde(rename = "cognito:groups", default)]
    groups: Vec<String>,
}

/// A verified provider identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct External {
    pub issuer: String,
    pub subject: String,
    pub username: String,
    pub roles: Vec<Role>,
    /// The token's `iat` (Unix seconds): tokens from before an admin's revocation are refused.
    pub issued_at: i64,
}

#[derive(Default)]
struct KeyCache {
    keys: HashMap<String, DecodingKey>,
    fetched_at: Option<Instant>,
    attempted_at: Option<Instant>,
}

pub struct Oidc {
    issuer: String,
    client_id: String,
    jwks_url: url::Url,
    role_map: Vec<(String, Role)>,
    http: reqwest::Client,
    cache: tokio::sync::Mutex<()>,
    keys: Mutex<KeyCache>,
}

/// What the web app needs to offer hosted login.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublicConfig {
    pub enabled: bool,
    pub issuer: Option<String>,
    pub client_id: Option<String>,
    /// OpenID discovery document of the provider.
    pub discovery_url: Option<String>,
    /// Always authorization code with PKCE (S256).
    pub flow: Option<String>,
}

#[derive(Deserialize)]
struct Jwks {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Jwk {
    kid: Option<String>,
    kty: String,
    alg: Option<String>,
    n: Option<String>,
    e: Option<String>,
}

impl Oidc {
    /// The provider the configuration names, if any.
    pub fn from_config(config: &Config) -> anyhow::Result<Option<Self>> {
        let (Some(issuer), Some(client_id)) = (&config.oidc_issuer, &config.oidc_client_id) else {
            if config.oidc_issuer.is_some() || config.oidc_client_id.is_some() {
                anyhow::bail!("IMS_OIDC_ISSUER and IMS_OIDC_CLIENT_ID must be set together");
            }
            return Ok(None);
        };
        let issuer = issuer.as_str().trim_end_matches('/').to_owned();
        let jwks_url = match &config.oidc_jwks_url {
            Some(u) => u.clone(),
            None => url::Url::parse(&format!("{issuer}/.well-known/jwks.json"))?,
        };
        let role_map = config
            .oidc_role_map
            .iter()
            .filter_map(|(group, role)| Role::parse(role).map(|r| (group.clone(), r)))
            .collect();
        let http = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Some(Self {
            issuer,
            client_id: client_id.clone(),
            jwks_url,
            role_map,
            http,
            cache: tokio::sync::Mutex::new(()),
            keys: Mutex::new(KeyCache::default()),
        }))
    }

    pub fn public_config(&self) -> PublicConfig {
        PublicConfig {
            enabled: true,
            issuer: Some(self.issuer.clone()),
            client_id: Some(self.client_id.clone()),
            discovery_url: Some(format!("{}/.well-known/openid-configuration", self.issuer)),
            flow: Some("authorization_code+pkce_s256".into()),
        }
    }

    /// Roles for these groups, through the exact map only.
    pub fn roles_for(&self, groups: &[String]) -> Vec<Role> {
        let mapped: Vec<Role> = groups
            .iter()
            .flat_map(|g| self.role_map.iter().filter(move |(group, _)| group == g))
            .map(|(_, role)| *role)
            .collect();
        roles::normalize(&mapped)
    }

    fn cached_key(&self, kid: &str) -> (Option<DecodingKey>, bool) {
        let Ok(cache) = self.keys.lock() else {
            return (None, false);
        };
        let fresh = cache.fetched_at.is_some_and(|t| t.elapsed() < MAX_AGE);
        let may_fetch = cache
            .attempted_at
            .is_none_or(|t| t.elapsed() >= REFETCH_AFTER);
        (cache.keys.get(kid).cloned(), !fresh || may_fetch)
    }

    /// Fetches the JWKS (one fetch at a time), keeping the old keys if it fails.
    async fn refresh(&self) {
        let _one = self.cache.lock().await;
        if let Ok(cache) = self.keys.lock() {
            if cache
                .attempted_at
                .is_some_and(|t| t.elapsed() < REFETCH_AFTER)
            {
                return;
            }
        }
        if let Ok(mut cache) = self.keys.lock() {
            cache.attempted_at = Some(Instant::now());
        }
        match self.fetch().await {
            Ok(keys) => {
                tracing::info!(keys = keys.len(), "identity provider keys fetched");
                if let Ok(mut cache) = self.keys.lock() {
                    cache.keys = keys;
                    cache.fetched_at = Some(Instant::now());
                }
            }
            Err(e) => tracing::warn!(error = %e, "identity provider keys could not be fetched"),
        }
    }

    async fn fetch(&self) -> anyhow::Result<HashMap<String, DecodingKey>> {
        let response = self.http.get(self.jwks_url.clone()).send().await?;
        if !response.status().is_success() {
            anyhow::bail!("JWKS answered {}", response.status());
        }
        let body = response.bytes().await?;
        if body.len() > MAX_JWKS_BYTES {
            anyhow::bail!("JWKS too large");
        }
        let jwks: Jwks = serde_json::from_slice(&body)?;
        let mut keys = HashMap::new();
        for k in jwks.keys {
            let usable = k.kty == "RSA" && k.alg.as_deref().is_none_or(|a| a == "RS256");
            if let (true, Some(kid), Some(n), Some(e)) = (usable, k.kid, k.n, k.e) {
                if let Ok(key) = DecodingKey::from_rsa_components(&n, &e) {
                    keys.insert(kid, key);
                }
            }
        }
        Ok(keys)
    }

    /// Verifies a provider access token.
    pub async fn verify(&self, token: &str) -> Result<External, Rejected> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| Rejected::Malformed)?;
        if header.alg != Algorithm::RS256 {
            return Err(Rejected::Algorithm);
        }
        if header.jku.is_some() || header.jwk.is_some() || header.x5u.is_some() {
            return Err(Rejected::Invalid);
        }
        let kid = header.kid.ok_or(Rejected::UnknownKey)?;
        let (key, may_fetch) = self.cached_key(&kid);
        let key = match key {
            Some(k) => k,
            None if may_fetch => {
                self.refresh().await;
                self.cached_key(&kid).0.ok_or(Rejected::UnknownKey)?
            }
            None => return Err(Rejected::UnknownKey),
        };
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[&self.issuer]);
        validation.validate_aud = false;
        validation.leeway = 30;
        validation.set_required_spec_claims(&["exp", "iss", "sub", "iat"]);
        let data = jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map_err(|_| Rejected::Invalid)?;
        let claims = data.claims;
        if claims.token_use != "access" {
            return Err(Rejected::NotAccessToken);
        }
        if claims.client_id.as_deref() != Some(self.client_id.as_str()) {
            return Err(Rejected::WrongClient);
        }
        Ok(External {
            issuer: self.issuer.clone(),
            username: claims.username.unwrap_or_else(|| claims.sub.clone()),
            roles: self.roles_for(&claims.groups),
            issued_at: claims.iat,
            subject: claims.sub,
        })
    }
}

/// Whether a bearer token claims to be the provider's (RS256), so IMS's own verifier is skipped.
pub fn looks_external(token: &str) -> bool {
    jsonwebtoken::decode_header(token).is_ok_and(|h| h.alg == Algorithm::RS256)
}

/// Records the roles the provider's groups grant now, so ADMIN sees what the user holds (the
/// token's groups stay the only source of the roles a request gets). One statement.
pub async fn sync_roles(db: &Db, user_id: &str, roles: &[Role]) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET roles = $2, updated_at = $3 WHERE id = $1")
        .bind(user_id)
        .bind(roles::to_db(roles))
        .bind(crate::clock::now())
        .execute(db.pool())
        .await
        .map(|_| ())
}

/// The IMS user linked to a provider identity, if it was provisioned already.
pub async fn linked_user(db: &Db, who: &External) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT user_id FROM external_identities WHERE issuer = $1 AND subject = $2")
        .bind(&who.issuer)
        .bind(&who.subject)
        .fetch_optional(db.pool())
        .await
}

/// The IMS user of a provider identity, created (in a transaction) if it does not exist yet.
pub async fn provision(db: &Db, who: &External) -> anyhow::Result<String> {
    if let Some(id) = linked_user(db, who).await? {
        return Ok(id);
    }
    let id = uuid::Uuid::now_v7().to_string();
    let host = url::Url::parse(&who.issuer)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| "provider".into());
    // Not an address anyone can receive mail at: the provider owns these accounts' credentials.
    let email = format!("{}@{}.oidc.invalid", who.subject.to_lowercase(), host);
    let name: String = who.username.chars().take(200).collect();
    let now = crate::clock::now();
    let mut tx = db.begin_write().await?;
    sqlx::query(
        "INSERT INTO users (id, email, name, password_hash, roles, email_verified, disabled,
                            auth_version, created_at, updated_at)
         VALUES ($1, $2, $3, NULL, $4, 1, 0, 1, $5, $5)
         ON CONFLICT (email) DO NOTHING",
    )
    .bind(&id)
    .bind(&email)
    .bind(&name)
    .bind(roles::to_db(&who.roles))
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let linked = sqlx::query(
        "INSERT INTO external_identities (issuer, subject, user_id, created_at)
         SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM users WHERE id = $3)
         ON CONFLICT (issuer, subject) DO NOTHING",
    )
    .bind(&who.issuer)
    .bind(&who.subject)
    .bind(&id)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    if linked.rows_affected() == 0 {
        // Another request provisioned this identity first: use theirs.
        tx.rollback().await?;
    } else {
        crate::auth::audit::record(
            &mut *tx,
            crate::auth::audit::Event::new(crate::auth::audit::kind::USER_CREATED)
                .subject(&id)
                .detail(serde_json::json!({ "provider": who.issuer, "roles": roles::to_db(&who.roles) })),
        )
        .await?;
        tx.commit().await?;
    }
    let id: String = sqlx::query_scalar(
        "SELECT user_id FROM external_identities WHERE issuer = $1 AND subject = $2",
    )
    .bind(&who.issuer)
    .bind(&who.subject)
    .fetch_one(db.pool())
    .await?;
    Ok(id)
}
