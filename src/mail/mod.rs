//! Mail: templates, the outbox that makes delivery survive crashes and outages, and the transports
//! behind one small trait — `file` (embedded default: one `.eml` per message, written atomically),
//! `smtp` (lettre: plain on loopback, STARTTLS or implicit TLS, `SMTP_PASSWORD` authentication) and
//! `ses` (Amazon SES v2, see [`ses`]). Messages are built with lettre's typed builder, so no
//! user-supplied text can inject a header.

pub mod file;
pub mod message;
pub mod notify;
pub mod outbox;
pub mod ses;
pub mod smtp;
pub mod templates;
pub mod worker;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::config::{Config, MailTransport};

/// A message as the outbox stores it (encrypted) and the transports send it.
#[derive(Clone, Serialize, Deserialize)]
pub struct MailContent {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl std::fmt::Debug for MailContent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailContent")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// Why a send failed. Permanent failures (a rejected recipient) are not retried.
#[derive(Debug, Clone)]
pub struct SendError {
    pub permanent: bool,
    pub reason: String,
}

impl SendError {
    pub fn transient(reason: impl Into<String>) -> Self {
        Self {
            permanent: false,
            reason: reason.into(),
        }
    }
    pub fn permanent(reason: impl Into<String>) -> Self {
        Self {
            permanent: true,
            reason: reason.into(),
        }
    }
}

pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<(), SendError>> + Send + 'a>>;

/// Delivers one fully built message. `id` is the outbox id, stable across retries.
pub trait Transport: Send + Sync {
    fn name(&self) -> &'static str;
    fn send<'a>(&'a self, id: &'a str, message: &'a lettre::Message) -> SendFuture<'a>;
}

/// The transport the configuration asks for.
pub async fn transport(
    config: &Config,
    aws: &crate::aws::Shared,
) -> anyhow::Result<Arc<dyn Transport>> {
    Ok(match config.mail_transport {
        MailTransport::File => Arc::new(file::FileTransport::new(config.data_dir.join("mail"))?),
        MailTransport::Smtp => Arc::new(smtp::SmtpTransport::new(config)?),
        MailTransport::Ses => Arc::new(ses::SesTransport::new(aws.get(config).await?)),
    })
}
