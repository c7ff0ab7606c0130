//! The alerts channel on Amazon SNS (`IMS_ALERTS_TOPIC_ARN`): each alert is published with the
//! same attributes as queue messages (type, line, order, severity), so subscribers can filter
//! with SNS filter policies instead of parsing bodies.

use aws_sdk_sns::types::MessageAttributeValue;
use aws_sdk_sns::Client;

use super::channel::AlertsChannel;
use super::{Attributes, QueueError, QueueFuture};

pub struct SnsChannel {
    client: Client,
    topic_arn: String,
}

impl SnsChannel {
    pub fn new(sdk: &aws_config::SdkConfig, topic_arn: String) -> Self {
        Self {
            client: Client::new(sdk),
            topic_arn,
        }
    }
}

fn error<E: std::fmt::Display>(e: E) -> QueueError {
    QueueError(e.to_string().chars().take(200).collect())
}

impl AlertsChannel for SnsChannel {
    fn name(&self) -> &'static str {
        "sns"
    }

    fn publish<'a>(
        &'a self,
        _id: &'a str,
        body: &'a str,
        attributes: &'a Attributes,
    ) -> QueueFuture<'a, ()> {
        Box::pin(async move {
            let mut request = self
                .client
                .publish()
                .topic_arn(&self.topic_arn)
                .message(body);
            for (name, v) in attributes.pairs() {
                let value = MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(v)
                    .build()
                    .map_err(error)?;
                request = request.message_attributes(name, value);
            }
            request.send().await.map_err(error)?;
            Ok(())
        })
    }
}
