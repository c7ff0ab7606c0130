//! Shared AWS SDK configuration: the default credential chain (the ECS task role in production;
//! never static keys in IMS's configuration), the region from the environment, and
//! `IMS_AWS_ENDPOINT_URL` overriding every service endpoint for local stand-ins. HTTPS goes
//! through rustls on *ring* (as for PostgreSQL and SMTP) with the system's root certificates, so
//! the binary carries one TLS crypto library, not two.

use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};

use crate::config::Config;

/// One SDK configuration for every adapter of a process, loaded when the first one needs it, so
/// they share one credentials provider (and its cache) instead of each resolving the chain.
#[derive(Default)]
pub struct Shared(tokio::sync::OnceCell<SdkConfig>);

impl Shared {
    pub async fn get(&self, config: &Config) -> anyhow::Result<&SdkConfig> {
        self.0
            .get_or_try_init(|| sdk_config_for(config.aws_endpoint_url.as_ref()))
            .await
    }
}

/// The SDK configuration with an optional endpoint override (used before the configuration is
/// parsed, to read the secret store).
pub async fn sdk_config_for(endpoint: Option<&url::Url>) -> anyhow::Result<SdkConfig> {
    let https = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(https);
    if let Some(endpoint) = endpoint {
        loader = loader.endpoint_url(endpoint.as_str().trim_end_matches('/'));
    }
    let sdk = loader.load().await;
    if sdk.region().is_none() {
        anyhow::bail!("AWS adapters need a region: set AWS_REGION (the ECS task sets it for you)");
    }
    Ok(sdk)
}

/// The HTTPS URL of an SQS queue given as `sqs://host/account/name` (or already as a URL);
/// with an endpoint override, the queue's path on that endpoint.
pub fn queue_http_url(raw: &str, endpoint: Option<&url::Url>) -> anyhow::Result<String> {
    let parsed = url::Url::parse(raw)
        .map_err(|_| anyhow::anyhow!("IMS_QUEUE_URL is not a URL such as sqs://sqs.eu-west-1.amazonaws.com/123456789012/ims-events"))?;
    let path = parsed.path().trim_start_matches('/');
    if path.split('/').filter(|p| !p.is_empty()).count() != 2 {
        anyhow::bail!(
            "IMS_QUEUE_URL must name an account and a queue: sqs://host/123456789012/name"
        );
    }
    Ok(match (parsed.scheme(), endpoint) {
        (_, Some(e)) => format!("{}/{path}", e.as_str().trim_end_matches('/')),
        ("sqs", None) => format!("https://{}/{path}", parsed.host_str().unwrap_or_default()),
        ("https", None) => raw.to_owned(),
        _ => anyhow::bail!("IMS_QUEUE_URL must be sqs://… or https://…"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_urls_map_to_https_or_the_stand_in() {
        let q = "sqs://sqs.eu-west-1.amazonaws.com/123456789012/ims-events";
        assert_eq!(
            queue_http_url(q, None).unwrap(),
            "https://sqs.eu-west-1.amazonaws.com/123456789012/ims-events"
        );
        let moto = url::Url::parse("http://127.0.0.1:5000").unwrap();
        assert_eq!(
            queue_http_url(q, Some(&moto)).unwrap(),
            "http://127.0.0.1:5000/123456789012/ims-events"
        );
        assert!(queue_http_url("sqs://host/only-a-name", None).is_err());
        assert!(queue_http_url("ftp://host/1/x", None).is_err());
    }
}
