//! Application assembly, shared by `ims serve` and the tests: [`App::build`] resolves key material,
//! opens and migrates the database, binds the listener (port 0 in tests) and returns; [`App::run_until`]
//! serves with the background workers until the shutdown future resolves, then drains in-flight
//! requests and stops the workers.

use std::future::Future;
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use tokio::net::TcpListener;

use crate::auth::audit::{self, kind, Event};
use crate::auth::keys;
use crate::auth::password::Hasher;
use crate::auth::revocation::Revocations;
use crate::auth::sessions::Lifetimes;
use crate::auth::throttle::Throttle;
use crate::auth::tokens::Tokens;
use crate::config::Config;
use crate::db::{migrate, Db};
use crate::events::channel::AlertsChannel;
use crate::events::Queue;
use crate::mail::notify::Notifier;
use crate::mail::outbox::Sealer;
use crate::mail::worker::Sender;
use crate::mail::Transport;
use crate::metrics::Metrics;
use crate::production::calendar::FactoryClock;
use crate::storage::Storage;
use crate::users::cache::UserCache;
use crate::workers;

/// Everything a request handler may use.
pub struct Services {
    pub config: Config,
    pub db: Db,
    pub hasher: Hasher,
    pub tokens: Tokens,
    pub revocations: Revocations,
    pub throttle: Throttle,
    pub metrics: Metrics,
    pub users: UserCache,
    pub lifetimes: Lifetimes,
    pub public_origin: String,
    pub cookie_secure: bool,
    pub otp_pepper: SecretString,
    pub notifier: Notifier,
    pub mail_transport: Arc<dyn Transport>,
    pub mail_sender: Sender,
    /// The factory calendar (shifts and work dates in factory local time).
    pub clock: FactoryClock,
    pub storage: Arc<dyn Storage>,
    pub queue: Arc<dyn Queue>,
    pub alerts_channel: Arc<dyn AlertsChannel>,
    /// Wakes the event consumer when something was queued.
    pub events_wake: tokio::sync::Notify,
    /// Every request being handled, including those whose client has gone away
    /// (`middleware::edge`); a graceful stop waits for them before it closes the pool.
    pub requests: Arc<crate::http::in_flight::InFlight>,
    /// Leaders' task lists, for a second at most (`crate::production::task_cache`).
    pub task_cache: crate::production::task_cache::TaskCache,
    /// The external identity provider, when configured.
    pub oidc: Option<crate::auth::oidc::Oidc>,
    /// The `IMS_SECRETS_ID` secret, read again on an interval for rotations.
    pub secret_store: Option<crate::secrets::store::Store>,
    /// The `Content-Security-Policy` header for this configuration.
    pub content_security_policy: axum::http::HeaderValue,
}

#[derive(Clone)]
pub struct AppState(Arc<Services>);

impl Deref for AppState {
    type Target = Services;
    fn deref(&self) -> &Services {
        &self.0
    }
}

pub struct App {
    state: AppState,
    listener: TcpListener,
    addr: SocketAddr,
}

/// Opens the configured database and applies pending migrations.
pub async fn open_database(config: &Config) -> anyhow::Result<Db> {
    let db = Db::connect(&config.database_url, config.database_max_connections).await?;
    migrate::run(&db).await?;
    Ok(db)
}

impl App {
    pub async fn build(mut config: Config) -> anyhow::Result<Self> {
        let (key_doc, key_source) = keys::configured_or_generated(
            config.secrets.jwt_signing_keys.as_ref(),
            &config.data_dir,
            keys::SIGNING_KEYS_FILE,
            || keys::generate_key_set(None),
        )?;
        let signing_keys = keys::parse_key_set(&key_doc)?;
        let (otp_pepper, pepper_source) = keys::configured_or_generated(
            config.secrets.otp_pepper.as_ref(),
            &config.data_dir,
            keys::OTP_PEPPER_FILE,
            keys::generate_pepper,
        )?;
        if otp_pepper.expose_secret().len() < 32 {
            anyhow::bail!("secret OTP_PEPPER must be at least 32 characters");
        }
        let db = open_database(&config).await?;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {}", config.listen, e.kind()))?;
        let addr = listener.local_addr()?;
        if !config.public_url_configured {
            // Follow the bound address (port 0 becomes the real port).
            config.public_url = url::Url::parse(&format!("http://{addr}"))?;
        }
        let issuer = config.public_url.as_str().trim_end_matches('/').to_owned();
        let tokens = Tokens::new(&signing_keys, issuer, config.auth.access_token_ttl)?;

        audit::record(
            db.pool(),
            Event::new(kind::CONFIG_LOADED).detail(serde_json::json!({
                "database": format!("{:?}", db.backend()).to_lowercase(),
                "listen": addr.to_string(),
                "public_url": config.public_url.as_str(),
                "signing_keys": signing_keys.iter().map(|k| k.kid.clone()).collect::<Vec<_>>(),
                "signing_keys_source": source_name(&key_source),
                "otp_pepper_source": source_name(&pepper_source),
            })),
        )
        .await?;

        let aws = crate::aws::Shared::default();
        let mail_transport = crate::mail::transport(&config, &aws).await?;
        let mail_sender = Sender {
            from: config.mail_from.parse().map_err(|_| {
                anyhow::anyhow!(
                    "IMS_MAIL_FROM is not a valid mailbox such as 'IMS <no-reply@factory.example>'"
                )
            })?,
            domain: config
                .public_url
                .host_str()
                .unwrap_or("localhost")
                .to_owned(),
        };
        let notifier = Notifier {
            codes: crate::auth::otp::CodeHasher::new(&otp_pepper),
            sealer: Sealer::new(&otp_pepper)?,
            public_url: config.public_url.clone(),
            wake: tokio::sync::Notify::new(),
        };
        let public_origin = config.public_url.origin().ascii_serialization();
        let cookie_secure = config.public_url.scheme() == "https"
            || !config
                .public_url
                .host_str()
                .is_some_and(|h| h == "localhost" || h.starts_with("127.") || h == "[::1]");
        crate::production::reasons::seed(&db).await?;
        let storage = crate::storage::from_config(&config, &aws).await?;
        let queue = crate::events::queue(&config, &db, &aws).await?;
        let alerts_channel = crate::events::channel::from_config(&config, &aws).await?;
        let oidc = crate::auth::oidc::Oidc::from_config(&config)?;
        let secret_store = match &config.secrets_id {
            Some(id) => Some(crate::secrets::store::Store::new(
                aws.get(&config).await?,
                id,
            )),
            None => None,
        };
        let content_security_policy = axum::http::HeaderValue::from_str(
            &crate::http::middleware::content_security_policy(&config),
        )?;
        let state = AppState(Arc::new(Services {
            content_security_policy,
            oidc,
            secret_store,
            clock: FactoryClock::new(config.factory_offset),
            storage,
            queue,
            alerts_channel,
            events_wake: tokio::sync::Notify::new(),
            task_cache: Default::default(),
            requests: Default::default(),
            hasher: Hasher::new()?,
            tokens,
            revocations: Revocations::new(config.auth.access_token_ttl),
            throttle: Throttle::new(config.auth.clone()),
            metrics: Metrics::new(),
            users: UserCache::default(),
            lifetimes: Lifetimes {
                idle: config.auth.refresh_idle_timeout,
                absolute: config.auth.refresh_absolute_timeout,
            },
            public_origin,
            cookie_secure,
            otp_pepper,
            notifier,
            mail_transport,
            mail_sender,
            db,
            config,
        }));
        state.revocations.poll(&state.db).await?;
        Ok(Self {
            state,
            listener,
            addr,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then finishes in-flight requests and stops the workers.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let workers = workers::spawn(self.state.clone(), stop_rx);
        let router = crate::http::router(self.state.clone());
        tracing::info!(addr = %self.addr, "ims listening");
        axum::serve(
            self.listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await?;
        // Connections are closed now, but a request whose client went away still runs in its own
        // task: let it finish (the request timeout bounds it) before the pool goes.
        let requests = &self.state.requests;
        if !requests.is_empty() {
            tracing::info!(
                running = requests.len(),
                "waiting for requests still running"
            );
            let drain = crate::http::REQUEST_TIMEOUT + std::time::Duration::from_secs(5);
            if tokio::time::timeout(drain, requests.idle()).await.is_err() {
                tracing::warn!(
                    running = requests.len(),
                    "requests still running; stopping anyway"
                );
            }
        }
        tracing::info!("stopping background workers");
        let _ = stop_tx.send(true);
        for worker in workers {
            let _ = worker.await;
        }
        self.state.db.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

fn source_name(source: &crate::secrets::Source) -> &'static str {
    match source {
        crate::secrets::Source::Env => "environment",
        crate::secrets::Source::File(_) => "file",
        crate::secrets::Source::Generated(_) => "generated",
        crate::secrets::Source::Store(_) => "secret store",
    }
}
