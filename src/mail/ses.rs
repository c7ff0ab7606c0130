//! The `ses` transport: Amazon SES through the v2 API (`SendEmail` with the raw MIME message lettre
//! built, so mail looks the same on every transport), signed by the default credential chain. SES
//! errors are classified like SMTP replies: a rejected message or recipient is permanent; throttling,
//! a paused account or an unverified sending domain (which an operator can fix) and network faults
//! are retried by the outbox.

use aws_sdk_sesv2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sesv2::primitives::Blob;
use aws_sdk_sesv2::types::{Destination, EmailContent, RawMessage};
use aws_sdk_sesv2::Client;

use super::{SendError, SendFuture, Transport};

pub struct SesTransport {
    client: Client,
}

impl SesTransport {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self {
            client: Client::new(sdk),
        }
    }
}

impl Transport for SesTransport {
    fn name(&self) -> &'static str {
        "ses"
    }

    fn send<'a>(&'a self, _id: &'a str, message: &'a lettre::Message) -> SendFuture<'a> {
        Box::pin(async move {
            let envelope = message.envelope();
            let from = envelope
                .from()
                .map(ToString::to_string)
                .ok_or_else(|| SendError::permanent("the message has no sender"))?;
            let to: Vec<String> = envelope.to().iter().map(ToString::to_string).collect();
            let raw = RawMessage::builder()
                .data(Blob::new(message.formatted()))
                .build()
                .map_err(|_| SendError::permanent("the message could not be encoded for SES"))?;
            let sent = self
                .client
                .send_email()
                .from_email_address(from)
                .destination(Destination::builder().set_to_addresses(Some(to)).build())
                .content(EmailContent::builder().raw(raw).build())
                .send()
                .await;
            match sent {
                Ok(_) => Ok(()),
                Err(SdkError::ServiceError(e)) => Err(classify(e.err().code())),
                Err(SdkError::TimeoutError(_)) => Err(SendError::transient("SES timed out")),
                Err(_) => Err(SendError::transient("cannot reach SES")),
            }
        })
    }
}

/// Permanent only when SES refused this message (its content or a recipient); everything else
/// is a condition that passes or that an operator can fix.
fn classify(code: Option<&str>) -> SendError {
    match code {
        Some(c @ ("MessageRejected" | "BadRequestException")) => {
            SendError::permanent(format!("SES refused the message ({c})"))
        }
        Some(
            c @ ("MailFromDomainNotVerifiedException"
            | "AccountSuspendedException"
            | "SendingPausedException"
            | "NotFoundException"),
        ) => {
            tracing::error!(
                code = c,
                "SES cannot send for this account; check the sending identity and account status"
            );
            SendError::transient(format!("SES cannot send yet ({c})"))
        }
        Some(c) => SendError::transient(format!("SES answered {c}")),
        None => SendError::transient("SES refused the request"),
    }
}

#[cfg(test)]
mod tests {
    use super::classify;

    #[test]
    fn rejections_are_permanent_and_throttling_is_retried() {
        assert!(classify(Some("MessageRejected")).permanent);
        assert!(classify(Some("BadRequestException")).permanent);
        for transient in [
            "TooManyRequestsException",
            "LimitExceededException",
            "SendingPausedException",
            "MailFromDomainNotVerifiedException",
            "InternalFailure",
        ] {
            assert!(!classify(Some(transient)).permanent, "{transient}");
        }
        assert!(!classify(None).permanent);
    }
}
