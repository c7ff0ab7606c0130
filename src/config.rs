//! Configuration: embedded defaults, overridden by `IMS_*` environment variables, with secrets
//! resolved through [`crate::secrets`]. Parsing works on a snapshot of the environment so tests can
//! build a configuration without touching the process environment. Unknown `IMS_*` variables are an
//! error (a typo must not silently fall back to a default). Nothing here opens a connection; `ims
//! check-config` prints [`Config::describe`], which never shows a secret.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::secrets::{self, Resolved, Resolver, SecretError, Source};

/// Every plain (non-secret) variable IMS reads. Secrets add `IMS_<NAME>` and `IMS_<NAME>_FILE`.
const KNOWN_VARS: &[&str] = &[
    "IMS_LISTEN",
    "IMS_DATA_DIR",
    "IMS_DATABASE_URL",
    "IMS_DATABASE_MAX_CONNECTIONS",
    "IMS_PUBLIC_URL",
    "IMS_MAIL_TRANSPORT",
    "IMS_SMTP_URL",
    "IMS_MAIL_FROM",
    "IMS_STORAGE_URL",
    "IMS_QUEUE_URL",
    "IMS_ALERTS_TOPIC_ARN",
    "IMS_AWS_ENDPOINT_URL",
    "IMS_SECRETS_ID",
    "IMS_SECRETS_REFRESH",
    "IMS_OIDC_ISSUER",
    "IMS_OIDC_CLIENT_ID",
    "IMS_OIDC_JWKS_URL",
    "IMS_OIDC_ROLE_MAP",
    "IMS_METRICS_ALLOW",
    "IMS_TRUSTED_PROXIES",
    "IMS_CORS_ORIGINS",
    "IMS_LOG_FORMAT",
    "IMS_REFRESH_IDLE_TIMEOUT",
    "IMS_REFRESH_ABSOLUTE_TIMEOUT",
    "IMS_LOGIN_MAX_FAILURES",
    "IMS_LOGIN_LOCK_DURATION",
    "IMS_LOGIN_IP_MAX_FAILURES",
    "IMS_LOGIN_IP_WINDOW",
    "IMS_CODE_REQUESTS_PER_CLIENT",
    "IMS_FACTORY_UTC_OFFSET",
    "IMS_WEB_DIR",
];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{var}: {problem}")]
    Invalid { var: &'static str, problem: String },
    #[error("unknown configuration variable {0} (see the README's configuration table)")]
    Unknown(String),
    #[error(transparent)]
    Secret(#[from] SecretError),
}

fn invalid(var: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        var,
        problem: problem.into(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailTransport {
    File,
    Smtp,
    Ses,
}

/// Tunables of login, tokens and throttling.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    pub access_token_ttl: Duration,
    pub refresh_idle_timeout: Duration,
    pub refresh_absolute_timeout: Duration,
    pub login_max_failures: u32,
    pub login_lock_duration: Duration,
    pub ip_max_failures: u32,
    pub ip_window: Duration,
    /// Code requests (forgot-password, send-verification) one client may make per hour; more are
    /// dropped silently.
    pub code_requests_per_client: u32,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            access_token_ttl: Duration::from_secs(15 * 60),
            refresh_idle_timeout: Duration::from_secs(30 * 60),
            refresh_absolute_timeout: Duration::from_secs(12 * 3600),
            login_max_failures: 5,
            login_lock_duration: Duration::from_secs(15 * 60),
            ip_max_failures: 100,
            ip_window: Duration::from_secs(15 * 60),
            code_requests_per_client: 30,
        }
    }
}

/// The secrets IMS uses; each may be unset (the embedded mode generates the keys it needs).
#[derive(Default)]
pub struct Secrets {
    pub jwt_signing_keys: Option<Resolved>,
    pub otp_pepper: Option<Resolved>,
    pub smtp_password: Option<Resolved>,
    pub database_password: Option<Resolved>,
    pub ai_api_key: Option<Resolved>,
}

impl Secrets {
    /// Every secret with its contract name.
    pub fn by_name(&self) -> [(&'static str, &Option<Resolved>); 5] {
        [
            ("JWT_SIGNING_KEYS", &self.jwt_signing_keys),
            ("OTP_PEPPER", &self.otp_pepper),
            ("SMTP_PASSWORD", &self.smtp_password),
            ("DATABASE_PASSWORD", &self.database_password),
            ("AI_API_KEY", &self.ai_api_key),
        ]
    }
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |s: &Option<Resolved>| match s {
            Some(r) => format!("[redacted, from {}]", describe_source(&r.source)),
            None => "unset".to_owned(),
        };
        f.debug_struct("Secrets")
            .field("jwt_signing_keys", &show(&self.jwt_signing_keys))
            .field("otp_pepper", &show(&self.otp_pepper))
            .field("smtp_password", &show(&self.smtp_password))
            .field("database_password", &show(&self.database_password))
            .field("ai_api_key", &show(&self.ai_api_key))
            .finish()
    }
}

fn describe_source(source: &Source) -> String {
    match source {
        Source::Env => "environment".into(),
        Source::File(p) => format!("file {}", p.display()),
        Source::Generated(p) => format!("generated file {}", p.display()),
        Source::Store(id) => format!("secret {id}"),
    }
}

/// A database URL; its `Debug` and `Display` hide any password it carries.
#[derive(Clone)]
pub struct DatabaseUrl(SecretString);

impl DatabaseUrl {
    pub fn new(url: impl Into<String>) -> Self {
        Self(SecretString::from(url.into()))
    }
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
    /// The user a PostgreSQL URL connects as (percent-decoded); `None` for SQLite or no user.
    pub fn user(&self) -> Option<String> {
        if !self.is_postgres() {
            return None;
        }
        let url = Url::parse(self.expose()).ok()?;
        let user = url::form_urlencoded::parse(format!("u={}", url.username()).as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())?;
        (!user.is_empty()).then_some(user)
    }

    pub fn is_postgres(&self) -> bool {
        let u = self.expose();
        u.starts_with("postgres://") || u.starts_with("postgresql://")
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(self.expose()))
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

/// Replaces the password of a URL (if any) with `[redacted]`; unparseable input is hidden whole.
pub fn redact_url(raw: &str) -> String {
    match Url::parse(raw) {
        Ok(mut url) => {
            if url.password().is_some() && url.set_password(Some("redacted")).is_err() {
                return "[unparseable URL hidden]".into();
            }
            let secret_param = |k: &str| k.to_ascii_lowercase().contains("password");
            if url.query_pairs().any(|(k, _)| secret_param(&k)) {
                let pairs: Vec<(String, String)> = url
                    .query_pairs()
                    .map(|(k, v)| {
                        let v = if secret_param(&k) {
                            "redacted".into()
                        } else {
                            v.into_owned()
                        };
                        (k.into_owned(), v)
                    })
                    .collect();
                url.query_pairs_mut().clear().extend_pairs(pairs);
            }
            url.to_string()
        }
        Err(_) => "[unparseable URL hidden]".into(),
    }
}

#[derive(Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: DatabaseUrl,
    pub database_max_connections: u32,
    pub public_url: Url,
    /// `IMS_PUBLIC_URL` was set (otherwise it follows the bound address).
    pub public_url_configured: bool,
    pub mail_transport: MailTransport,
    pub smtp_url: Option<Url>,
    pub mail_from: String,
    pub storage_url: String,
    /// The factory's local time as an offset from UTC: shifts and work dates are in this time.
    pub factory_offset: time::UtcOffset,
    pub queue_url: Option<String>,
    pub alerts_topic_arn: Option<String>,
    pub aws_endpoint_url: Option<Url>,
    pub secrets_id: Option<String>,
    /// How often the `IMS_SECRETS_ID` secret is read again (rotation without restart).
    pub secrets_refresh: Duration,
    pub oidc_issuer: Option<Url>,
    pub oidc_client_id: Option<String>,
    pub oidc_jwks_url: Option<Url>,
    pub oidc_role_map: Vec<(String, String)>,
    pub metrics_allow: Vec<IpNet>,
    pub trusted_proxies: Vec<IpNet>,
    pub cors_origins: Vec<String>,
    pub log_format: LogFormat,
    pub auth: AuthSettings,
    pub secrets: Secrets,
    /// The built web app served at `/`.
    pub web_dir: PathBuf,
}

impl Config {
    /// Reads the configuration from an environment snapshot, first reading the `IMS_SECRETS_ID`
    /// secret from Secrets Manager when it is set.
    pub async fn load(env: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let id = env
            .get("IMS_SECRETS_ID")
            .map(|v| v.trim())
            .filter(|v| !v.is_empty());
        let snapshot = match id {
            Some(id) => Some(
                secrets::store::Store::from_env(env, id)
                    .await?
                    .fetch()
                    .await?,
            ),
            None => None,
        };
        Self::from_env_with(env, snapshot.as_ref())
    }

    /// Reads the configuration from an environment snapshot without a secret store.
    pub fn from_env(env: &HashMap<String, String>) -> Result<Self, ConfigError> {
        Self::from_env_with(env, None)
    }

    /// Reads the configuration from an environment snapshot and one read of the secret store.
    pub fn from_env_with(
        env: &HashMap<String, String>,
        store: Option<&secrets::store::Snapshot>,
    ) -> Result<Self, ConfigError> {
        reject_unknown(env)?;
        let get = |k: &str| env.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());

        let listen: SocketAddr = get("IMS_LISTEN")
            .unwrap_or("127.0.0.1:8080")
            .parse()
            .map_err(|_| invalid("IMS_LISTEN", "expected host:port, e.g. 127.0.0.1:8080"))?;
        let data_dir = PathBuf::from(get("IMS_DATA_DIR").unwrap_or("./ims-data"));
        let resolver = Resolver::new(env, store);
        let secrets = Secrets {
            jwt_signing_keys: resolver.resolve("JWT_SIGNING_KEYS")?,
            otp_pepper: resolver.resolve("OTP_PEPPER")?,
            smtp_password: resolver.resolve("SMTP_PASSWORD")?,
            database_password: resolver.resolve("DATABASE_PASSWORD")?,
            ai_api_key: resolver.resolve("AI_API_KEY")?,
        };
        if let Some(snapshot) = store {
            // Instances sharing a secret store must share their keys: never generate them locally.
            for (name, value) in [
                ("JWT_SIGNING_KEYS", &secrets.jwt_signing_keys),
                ("OTP_PEPPER", &secrets.otp_pepper),
            ] {
                if value.is_none() {
                    return Err(SecretError::MissingInStore {
                        name: name.into(),
                        id: snapshot.id.clone(),
                    }
                    .into());
                }
            }
        }

        let database_url = database_url(get("IMS_DATABASE_URL"), &data_dir, &secrets)?;
        if let Some(snapshot) = store {
            check_database_user(snapshot, &database_url)?;
        }
        let public_url = match get("IMS_PUBLIC_URL") {
            Some(u) => parse_http_url("IMS_PUBLIC_URL", u)?,
            None => parse_http_url("IMS_PUBLIC_URL", &format!("http://{listen}"))?,
        };
        let mail_transport = match get("IMS_MAIL_TRANSPORT").unwrap_or("file") {
            "file" => MailTransport::File,
            "smtp" => MailTransport::Smtp,
            "ses" => MailTransport::Ses,
            other => {
                return Err(invalid(
                    "IMS_MAIL_TRANSPORT",
                    format!("'{other}' is not one of file, smtp, ses"),
                ))
            }
        };
        let smtp_url = get("IMS_SMTP_URL").map(parse_smtp_url).transpose()?;
        if mail_transport == MailTransport::Smtp && smtp_url.is_none() {
            return Err(invalid(
                "IMS_SMTP_URL",
                "required when IMS_MAIL_TRANSPORT=smtp",
            ));
        }
        let storage_url = match get("IMS_STORAGE_URL") {
            Some(u) if u.starts_with("file://") || u.starts_with("s3://") => u.to_owned(),
            Some(_) => {
                return Err(invalid(
                    "IMS_STORAGE_URL",
                    "expected file://… or s3://bucket/prefix",
                ))
            }
            None => format!("file://{}", data_dir.join("documents").display()),
        };
        let factory_offset = parse_offset(get("IMS_FACTORY_UTC_OFFSET").unwrap_or("+00:00"))?;
        let oidc_issuer = get("IMS_OIDC_ISSUER")
            .map(|u| parse_http_url("IMS_OIDC_ISSUER", u))
            .transpose()?;
        let oidc_jwks_url = get("IMS_OIDC_JWKS_URL")
            .map(|u| parse_http_url("IMS_OIDC_JWKS_URL", u))
            .transpose()?;
        let oidc_role_map = get("IMS_OIDC_ROLE_MAP")
            .map(parse_role_map)
            .transpose()?
            .unwrap_or_default();

        Ok(Self {
            listen,
            database_url,
            database_max_connections: parse_num(
                "IMS_DATABASE_MAX_CONNECTIONS",
                get("IMS_DATABASE_MAX_CONNECTIONS"),
                10,
            )?,
            public_url,
            public_url_configured: get("IMS_PUBLIC_URL").is_some(),
            mail_transport,
            smtp_url,
            mail_from: get("IMS_MAIL_FROM")
                .unwrap_or("IMS <no-reply@localhost>")
                .to_owned(),
            storage_url,
            factory_offset,
            queue_url: get("IMS_QUEUE_URL").map(str::to_owned),
            alerts_topic_arn: get("IMS_ALERTS_TOPIC_ARN").map(str::to_owned),
            aws_endpoint_url: get("IMS_AWS_ENDPOINT_URL")
                .map(|u| parse_http_url("IMS_AWS_ENDPOINT_URL", u))
                .transpose()?,
            secrets_id: get("IMS_SECRETS_ID").map(str::to_owned),
            secrets_refresh: match get("IMS_SECRETS_REFRESH") {
                Some(raw) => parse_duration("IMS_SECRETS_REFRESH", raw)?,
                None => Duration::from_secs(300),
            },
            oidc_issuer,
            oidc_client_id: get("IMS_OIDC_CLIENT_ID").map(str::to_owned),
            oidc_jwks_url,
            oidc_role_map,
            metrics_allow: parse_cidrs(
                "IMS_METRICS_ALLOW",
                get("IMS_METRICS_ALLOW").unwrap_or("127.0.0.0/8,::1/128"),
            )?,
            trusted_proxies: parse_cidrs(
                "IMS_TRUSTED_PROXIES",
                get("IMS_TRUSTED_PROXIES").unwrap_or(""),
            )?,
            cors_origins: parse_origins(get("IMS_CORS_ORIGINS").unwrap_or(""))?,
            log_format: match get("IMS_LOG_FORMAT").unwrap_or("text") {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                other => {
                    return Err(invalid(
                        "IMS_LOG_FORMAT",
                        format!("'{other}' is not one of text, json"),
                    ))
                }
            },
            auth: auth_settings(&get)?,
            web_dir: PathBuf::from(get("IMS_WEB_DIR").unwrap_or("web/dist")),
            data_dir,
            secrets,
        })
    }

    /// The effective configuration as `NAME=value` lines, with every secret redacted.
    pub fn describe(&self) -> String {
        let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "(unset)".into());
        let opt_url = |v: &Option<Url>| {
            v.as_ref()
                .map(|u| redact_url(u.as_str()))
                .unwrap_or_else(|| "(unset)".into())
        };
        let cidrs = |v: &[IpNet]| {
            let s: Vec<String> = v.iter().map(ToString::to_string).collect();
            if s.is_empty() {
                "(none)".into()
            } else {
                s.join(",")
            }
        };
        let secret = |name: &str, s: &Option<Resolved>| match s {
            Some(r) => format!("{name}=[redacted] (from {})", describe_source(&r.source)),
            None => format!("{name}=(unset)"),
        };
        let a = &self.auth;
        let mut lines = vec![
            format!("IMS_LISTEN={}", self.listen),
            format!("IMS_DATA_DIR={}", self.data_dir.display()),
            format!("IMS_DATABASE_URL={}", self.database_url),
            format!(
                "IMS_DATABASE_MAX_CONNECTIONS={}",
                self.database_max_connections
            ),
            format!("IMS_PUBLIC_URL={}", self.public_url),
            format!(
                "IMS_MAIL_TRANSPORT={}",
                format!("{:?}", self.mail_transport).to_lowercase()
            ),
            format!("IMS_SMTP_URL={}", opt_url(&self.smtp_url)),
            format!("IMS_MAIL_FROM={}", self.mail_from),
            format!("IMS_STORAGE_URL={}", self.storage_url),
            format!(
                "IMS_FACTORY_UTC_OFFSET={}",
                format_offset(self.factory_offset)
            ),
            format!("IMS_QUEUE_URL={}", opt(&self.queue_url)),
            format!("IMS_ALERTS_TOPIC_ARN={}", opt(&self.alerts_topic_arn)),
            format!("IMS_AWS_ENDPOINT_URL={}", opt_url(&self.aws_endpoint_url)),
            format!("IMS_WEB_DIR={}", self.web_dir.display()),
            format!("IMS_SECRETS_ID={}", opt(&self.secrets_id)),
            format!("IMS_SECRETS_REFRESH={}s", self.secrets_refresh.as_secs()),
            format!("IMS_OIDC_ISSUER={}", opt_url(&self.oidc_issuer)),
            format!("IMS_OIDC_CLIENT_ID={}", opt(&self.oidc_client_id)),
            format!("IMS_OIDC_JWKS_URL={}", opt_url(&self.oidc_jwks_url)),
            format!(
                "IMS_OIDC_ROLE_MAP={}",
                if self.oidc_role_map.is_empty() {
                    "(none)".to_owned()
                } else {
                    self.oidc_role_map
                        .iter()
                        .map(|(g, r)| format!("{g}={r}"))
                        .collect::<Vec<_>>()
                        .join(",")
                }
            ),
            format!("IMS_METRICS_ALLOW={}", cidrs(&self.metrics_allow)),
            format!("IMS_TRUSTED_PROXIES={}", cidrs(&self.trusted_proxies)),
            format!(
                "IMS_CORS_ORIGINS={}",
                if self.cors_origins.is_empty() {
                    "(none)".to_owned()
                } else {
                    self.cors_origins.join(",")
                }
            ),
            format!(
                "IMS_LOG_FORMAT={}",
                format!("{:?}", self.log_format).to_lowercase()
            ),
            format!(
                "IMS_REFRESH_IDLE_TIMEOUT={}s",
                a.refresh_idle_timeout.as_secs()
            ),
            format!(
                "IMS_REFRESH_ABSOLUTE_TIMEOUT={}s",
                a.refresh_absolute_timeout.as_secs()
            ),
            format!("IMS_LOGIN_MAX_FAILURES={}", a.login_max_failures),
            format!(
                "IMS_LOGIN_LOCK_DURATION={}s",
                a.login_lock_duration.as_secs()
            ),
            format!("IMS_LOGIN_IP_MAX_FAILURES={}", a.ip_max_failures),
            format!("IMS_LOGIN_IP_WINDOW={}s", a.ip_window.as_secs()),
            format!(
                "IMS_CODE_REQUESTS_PER_CLIENT={}",
                a.code_requests_per_client
            ),
        ];
        lines.extend(
            self.secrets
                .by_name()
                .into_iter()
                .map(|(name, value)| secret(name, value)),
        );
        lines.join("\n")
    }

    /// A configuration for tests and embedding: defaults, with the given data directory and database.
    pub fn for_data_dir(data_dir: &Path, database_url: Option<&str>) -> Result<Self, ConfigError> {
        let mut env = HashMap::new();
        env.insert("IMS_DATA_DIR".into(), data_dir.display().to_string());
        env.insert("IMS_LISTEN".into(), "127.0.0.1:0".into());
        if let Some(url) = database_url {
            env.insert("IMS_DATABASE_URL".into(), url.into());
        }
        Self::from_env(&env)
    }
}

fn reject_unknown(env: &HashMap<String, String>) -> Result<(), ConfigError> {
    let secret_vars: Vec<String> = secrets::KNOWN
        .iter()
        .flat_map(|n| [format!("IMS_{n}"), format!("IMS_{n}_FILE")])
        .collect();
    let mut unknown: Vec<&String> = env
        .keys()
        .filter(|k| k.starts_with("IMS_"))
        .filter(|k| !KNOWN_VARS.contains(&k.as_str()) && !secret_vars.contains(k))
        .collect();
    unknown.sort();
    match unknown.first() {
        Some(k) => Err(ConfigError::Unknown((*k).clone())),
        None => Ok(()),
    }
}

fn database_url(
    raw: Option<&str>,
    data_dir: &Path,
    secrets: &Secrets,
) -> Result<DatabaseUrl, ConfigError> {
    const VAR: &str = "IMS_DATABASE_URL";
    let raw = match raw {
        Some(r) => r.to_owned(),
        None => format!("sqlite://{}", data_dir.join("ims.db").display()),
    };
    if raw.starts_with("sqlite:") {
        return Ok(DatabaseUrl::new(raw));
    }
    let mut url = Url::parse(&raw).map_err(|_| invalid(VAR, "not a valid URL"))?;
    if !matches!(url.scheme(), "postgres" | "postgresql") {
        return Err(invalid(VAR, "expected sqlite://… or postgres://…"));
    }
    if let Some(password) = &secrets.database_password {
        if url.password().is_some() {
            return Err(invalid(
                VAR,
                "carries a password and DATABASE_PASSWORD is also set; set only one",
            ));
        }
        url.set_password(Some(password.value.expose_secret()))
            .map_err(|_| invalid(VAR, "cannot carry a password"))?;
    }
    Ok(DatabaseUrl::new(String::from(url)))
}

fn parse_http_url(var: &'static str, raw: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(raw).map_err(|_| invalid(var, "not a valid URL"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(invalid(
            var,
            "expected an http:// or https:// URL with a host",
        ));
    }
    if url.password().is_some() {
        return Err(invalid(var, "must not carry a password"));
    }
    Ok(url)
}

fn parse_smtp_url(raw: &str) -> Result<Url, ConfigError> {
    const VAR: &str = "IMS_SMTP_URL";
    let url = Url::parse(raw).map_err(|_| invalid(VAR, "not a valid URL"))?;
    if !matches!(url.scheme(), "smtp" | "smtps") || url.host().is_none() {
        return Err(invalid(
            VAR,
            "expected smtp://host:port or smtps://host:port",
        ));
    }
    if url.password().is_some() {
        return Err(invalid(
            VAR,
            "must not carry a password; use the SMTP_PASSWORD secret",
        ));
    }
    Ok(url)
}

fn parse_cidrs(var: &'static str, raw: &str) -> Result<Vec<IpNet>, ConfigError> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| invalid(var, format!("'{s}' is not a CIDR such as 10.0.0.0/16")))
        })
        .collect()
}

fn parse_origins(raw: &str) -> Result<Vec<String>, ConfigError> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            let url = parse_http_url("IMS_CORS_ORIGINS", s)?;
            Ok(url.origin().ascii_serialization())
        })
        .collect()
}

fn parse_role_map(raw: &str) -> Result<Vec<(String, String)>, ConfigError> {
    const VAR: &str = "IMS_OIDC_ROLE_MAP";
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|pair| {
            let (group, role) = pair
                .split_once('=')
                .ok_or_else(|| invalid(VAR, format!("'{pair}' is not group=ROLE")))?;
            if !matches!(role, "ADMIN" | "MANAGER" | "LINE_LEADER") {
                return Err(invalid(VAR, format!("'{role}' is not a role")));
            }
            Ok((group.to_owned(), role.to_owned()))
        })
        .collect()
}

fn parse_num<T: std::str::FromStr>(
    var: &'static str,
    raw: Option<&str>,
    default: T,
) -> Result<T, ConfigError> {
    match raw {
        None => Ok(default),
        Some(s) => s
            .parse()
            .map_err(|_| invalid(var, format!("'{s}' is not a positive whole number"))),
    }
}

/// Parses `90`, `90s`, `30m`, `12h` or `2d`.
pub fn parse_duration(var: &'static str, raw: &str) -> Result<Duration, ConfigError> {
    let (digits, unit) = raw.split_at(raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len()));
    let n: u64 = digits
        .parse()
        .map_err(|_| invalid(var, format!("'{raw}' is not a duration such as 30m")))?;
    let secs = match unit {
        "" | "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        "d" => n.checked_mul(86400),
        _ => None,
    }
    .filter(|s| *s > 0 && *s <= 366 * 86400)
    .ok_or_else(|| {
        invalid(
            var,
            format!("'{raw}' is not a duration between 1s and 366d"),
        )
    })?;
    Ok(Duration::from_secs(secs))
}

fn auth_settings<'a>(get: &impl Fn(&str) -> Option<&'a str>) -> Result<AuthSettings, ConfigError> {
    let d = AuthSettings::default();
    let dur = |var: &'static str, default: Duration| match get(var) {
        Some(raw) => parse_duration(var, raw),
        None => Ok(default),
    };
    let settings = AuthSettings {
        access_token_ttl: d.access_token_ttl,
        refresh_idle_timeout: dur("IMS_REFRESH_IDLE_TIMEOUT", d.refresh_idle_timeout)?,
        refresh_absolute_timeout: dur("IMS_REFRESH_ABSOLUTE_TIMEOUT", d.refresh_absolute_timeout)?,
        login_max_failures: parse_num(
            "IMS_LOGIN_MAX_FAILURES",
            get("IMS_LOGIN_MAX_FAILURES"),
            d.login_max_failures,
        )?,
        login_lock_duration: dur("IMS_LOGIN_LOCK_DURATION", d.login_lock_duration)?,
        ip_max_failures: parse_num(
            "IMS_LOGIN_IP_MAX_FAILURES",
            get("IMS_LOGIN_IP_MAX_FAILURES"),
            d.ip_max_failures,
        )?,
        ip_window: dur("IMS_LOGIN_IP_WINDOW", d.ip_window)?,
        code_requests_per_client: parse_num(
            "IMS_CODE_REQUESTS_PER_CLIENT",
            get("IMS_CODE_REQUESTS_PER_CLIENT"),
            d.code_requests_per_client,
        )?,
    };
    if settings.login_max_failures == 0 || settings.ip_max_failures == 0 {
        return Err(invalid(
            "IMS_LOGIN_MAX_FAILURES",
            "failure limits must be at least 1",
        ));
    }
    Ok(settings)
}

/// An RDS credentials secret's password belongs to its `username`: refuse to use it for another
/// user (every connection would fail after the next rotation, with nothing saying why).
pub fn check_database_user(
    snapshot: &secrets::store::Snapshot,
    url: &DatabaseUrl,
) -> Result<(), SecretError> {
    match (snapshot.database_user(), url.user()) {
        (Some(secret_user), Some(url_user)) if secret_user != url_user => Err(SecretError::Store {
            id: snapshot
                .origin("DATABASE_PASSWORD")
                .unwrap_or(&snapshot.id)
                .to_owned(),
            reason: format!(
                "its username is {secret_user}, but IMS_DATABASE_URL connects as {url_user}; use the same user"
            ),
        }),
        _ => Ok(()),
    }
}

fn parse_offset(text: &str) -> Result<time::UtcOffset, ConfigError> {
    let bad = || {
        invalid(
            "IMS_FACTORY_UTC_OFFSET",
            "expected an offset such as +07:00, -05:00 or +00:00",
        )
    };
    let (sign, rest) = match text.split_at_checked(1) {
        Some(("+", rest)) => (1, rest),
        Some(("-", rest)) => (-1, rest),
        _ => return Err(bad()),
    };
    let (h, m) = rest.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let hours: i8 = h.parse().map_err(|_| bad())?;
    let minutes: i8 = m.parse().map_err(|_| bad())?;
    if hours > 14 || minutes > 59 {
        return Err(bad());
    }
    time::UtcOffset::from_hms(sign * hours, sign * minutes, 0).map_err(|_| bad())
}

fn format_offset(offset: time::UtcOffset) -> String {
    let (h, m, _) = offset.as_hms();
    let sign = if h < 0 || m < 0 { '-' } else { '+' };
    format!("{sign}{:02}:{:02}", h.abs(), m.abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn embedded_defaults() {
        let c = Config::from_env(&env(&[])).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.database_url.expose(), "sqlite://./ims-data/ims.db");
        assert_eq!(c.public_url.as_str(), "http://127.0.0.1:8080/");
        assert_eq!(c.mail_transport, MailTransport::File);
        assert_eq!(c.storage_url, "file://./ims-data/documents");
        assert_eq!(c.metrics_allow.len(), 2);
    }

    #[test]
    fn unknown_variables_are_refused() {
        let err = Config::from_env(&env(&[("IMS_LISTN", "x")])).unwrap_err();
        assert!(err.to_string().contains("IMS_LISTN"));
    }

    #[test]
    fn database_password_is_injected_and_redacted() {
        let c = Config::from_env(&env(&[
            ("IMS_DATABASE_URL", "postgres://ims@db.internal:5432/ims"),
            ("IMS_DATABASE_PASSWORD", "canary-db-pass"),
        ]))
        .unwrap();
        assert!(c.database_url.expose().contains("canary-db-pass"));
        assert!(!format!("{:?}", c).contains("canary-db-pass"));
        assert!(!c.describe().contains("canary-db-pass"));
        assert!(c
            .describe()
            .contains("DATABASE_PASSWORD=[redacted] (from environment)"));
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (k, v) in [
            ("IMS_LISTEN", "nope"),
            ("IMS_MAIL_TRANSPORT", "pigeon"),
            ("IMS_METRICS_ALLOW", "10.0.0.0/99"),
            ("IMS_REFRESH_IDLE_TIMEOUT", "10y"),
            ("IMS_PUBLIC_URL", "ftp://x"),
            ("IMS_SMTP_URL", "smtp://u:pw@host:25"),
        ] {
            let err = Config::from_env(&env(&[(k, v)])).unwrap_err().to_string();
            assert!(err.starts_with(k), "{err}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("X", "30m").unwrap().as_secs(), 1800);
        assert_eq!(parse_duration("X", "12h").unwrap().as_secs(), 43200);
        assert_eq!(parse_duration("X", "45").unwrap().as_secs(), 45);
        assert!(parse_duration("X", "0").is_err());
        assert!(parse_duration("X", "m").is_err());
    }

    #[test]
    fn factory_offset_is_parsed_strictly() {
        let ok = |v: &str| parse_offset(v).map(format_offset).ok();
        assert_eq!(ok("+07:00").as_deref(), Some("+07:00"));
        assert_eq!(ok("-05:30").as_deref(), Some("-05:30"));
        assert_eq!(ok("+00:00").as_deref(), Some("+00:00"));
        for bad in ["7", "+7:00", "+15:00", "+07:60", "07:00", "+07:0x", ""] {
            assert!(parse_offset(bad).is_err(), "{bad}");
        }
    }
}
