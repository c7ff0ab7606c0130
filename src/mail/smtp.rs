//! The `smtp` transport (lettre). `IMS_SMTP_URL` chooses the security: `smtp://host:port` is plain
//! (for loopback test servers), `smtp://host:587?tls=starttls` requires STARTTLS, `smtps://host:465`
//! is implicit TLS. A user name in the URL plus the `SMTP_PASSWORD` secret turn on authentication.
//! 5xx answers (a rejected recipient) are permanent failures; everything else is retried.

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
        if !url.username().is_empty() {
            let password = config.secrets.smtp_password.as_ref().ok_or_else(|| {
                anyhow::anyhow!(
                    "IMS_SMTP_URL names a user, but the SMTP_PASSWORD secret is not set"
                )
            })?;
            builder = builder.credentials(Credentials::new(
                url.username().to_owned(),
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
                Err(e) if e.is_permanent() => Err(SendError::permanent(format!(
                    "the SMTP server refused the message ({})",
                    e.status().map(|c| c.to_string()).unwrap_or_default()
                ))),
                Err(e) => Err(SendError::transient(if e.is_timeout() {
                    "the SMTP server timed out".to_owned()
                } else if let Some(code) = e.status() {
                    format!("the SMTP server answered {code}")
                } else {
                    "cannot reach the SMTP server".to_owned()
                })),
            }
        })
    }
}
