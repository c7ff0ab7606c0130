//! The alerts channel: where raised alerts are published for people and systems outside IMS.
//! The embedded one writes a structured log line (`target: ims::alerts`), which a log shipper
//! can route; with `IMS_ALERTS_TOPIC_ARN` it publishes to SNS with the same attributes.

use super::{Attributes, QueueError, QueueFuture};

pub trait AlertsChannel: Send + Sync {
    fn name(&self) -> &'static str;
    fn publish<'a>(
        &'a self,
        id: &'a str,
        body: &'a str,
        attributes: &'a Attributes,
    ) -> QueueFuture<'a, ()>;
}

pub struct LogChannel;

impl AlertsChannel for LogChannel {
    fn name(&self) -> &'static str {
        "log"
    }

    fn publish<'a>(
        &'a self,
        id: &'a str,
        body: &'a str,
        attributes: &'a Attributes,
    ) -> QueueFuture<'a, ()> {
        Box::pin(async move {
            tracing::warn!(
                target: "ims::alerts",
                alert_id = id,
                kind = %attributes.kind,
                severity = %attributes.severity,
                line = attributes.line.as_deref().unwrap_or(""),
                order = attributes.order.as_deref().unwrap_or(""),
                body,
                "alert"
            );
            Ok::<(), QueueError>(())
        })
    }
}

/// The channel the configuration asks for: SNS when `IMS_ALERTS_TOPIC_ARN` is set, else the log.
pub async fn from_config(
    config: &crate::Config,
    aws: &crate::aws::Shared,
) -> anyhow::Result<std::sync::Arc<dyn AlertsChannel>> {
    match &config.alerts_topic_arn {
        None => Ok(std::sync::Arc::new(LogChannel)),
        Some(arn) => {
            if !arn.starts_with("arn:") {
                anyhow::bail!("IMS_ALERTS_TOPIC_ARN must be an SNS topic ARN (arn:aws:sns:…)");
            }
            let sdk = aws.get(config).await?;
            Ok(std::sync::Arc::new(super::sns::SnsChannel::new(
                sdk,
                arn.clone(),
            )))
        }
    }
}
