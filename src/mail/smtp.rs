//! The `smtp` transport (lettre). `IMS_SMTP_URL` chooses the security: `smtp://host:port` is plain
//! (for loopback test servers), `smtp://host:587?tls=starttls` requires STARTTLS, `smtps://host:465`
//! is implicit TLS. A user name in the URL plus the `SMTP_PASSWORD` secret turn on authentication.
//! A refused mailbox (550–553) is a permanent failure; everything else — including a failed login,
//! which an operator can fix — is retried.

use std::time::Duration;

use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use secrecy::ExposeSecret;

use super::{SendError, SendFuture, Transport};
use crate::config::Config;

pub struct SmtpTransport {
    inner: AsyncSmtpTransport<Tokio1Executor>,
}

impl SmtpTransport {
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        let url = config.smtp_url.as_ref().ok_or_else(|| {
            anyhow::anyhow!("IMS_SMTP_URL is required with IMS_MAIL_TRANSPORT=smtp")
        })?;
        let host = url
            .host_str()
            .ok_or_else(|| anyhow::anyhow!("IMS_SMTP_URL has no host"))?;
        let tls = url
            .query_pairs()
            .find(|(k, _)| k == "tls")
            .map(|(_, v)| v.into_owned());
        let mut builder = match (url.scheme(), tls.as_deref()) {
            ("smtps", _) => {
                AsyncSmtpTransport::<Tokio1Executor>::relay(host)?.port(url.port().unwrap_or(465))
            }
            ("smtp", Some("starttls")) => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)?
                    .port(url.port().unwrap_or(587))
            }
            ("smtp", None | Some("none")) => {
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
                    .port(url.port().unwrap_or(25))
            }
            _ => anyhow::bail!("IMS_SMTP_URL: tls must be starttls or none"),
        };
        let encrypted = url.scheme() == "smtps" || tls.as_deref() == Some("starttls");
        let loopback = matches!(host, "localhost" | "::1" | "[::1]") || host.starts_with("127.");
        if !url.username().is_empty() && !encrypted && !loopback {
            anyhow::bail!(
                "IMS_SMTP_URL: refusing to send SMTP credentials without TLS; use smtps:// or ?tls=starttls"
            );
        }
        if !url.username().is_empty() {
            let password = config.secrets.smtp_password.as_ref().ok_or_else(|| {
                anyhow::anyhow!(
                    "IMS_SMTP_URL names a user, but the SMTP_PASSWORD secret is not set"
                )
            })?;
            let user = url::form_urlencoded::parse(format!("u={}", url.username()).as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            builder = builder.credentials(Credentials::new(
                user,
                password.value.expose_secret().to_owned(),
            ));
        }
        Ok(Self {
            inner: builder.timeout(Some(Duration::from_secs(20))).build(),
        })
    }
}

impl Transport for SmtpTransport {
    fn name(&self) -> &'static str {
        "smtp"
    }

    fn send<'a>(&'a self, _id: &'a str, message: &'a lettre::Message) -> SendFuture<'a> {
        Box::pin(async move {
            match self.inner.send(message.clone()).await {
                Ok(_) => Ok(()),
                Err(e) => Err(classify(&e)),
            }
        })
    }
}

/// Permanent only when the server refused the mailbox or the message itself.
fn classify(e: &lettre::transport::smtp::Error) -> SendError {
    let code = e.status().map(|c| c.to_string());
    match code.as_deref() {
        Some(c @ ("550" | "551" | "552" | "553")) => {
            SendError::permanent(format!("the SMTP server refused the message ({c})"))
        }
        Some(c @ ("530" | "534" | "535" | "538")) => {
            tracing::error!(code = c, "SMTP authentication failed; check SMTP_PASSWORD");
            SendError::transient("the SMTP server refused our login")
        }
        Some(c) => SendError::transient(format!("the SMTP server answered {c}")),
        None if e.is_timeout() => SendError::transient("the SMTP server timed out"),
        None => SendError::transient("cannot reach the SMTP server"),
    }
}
