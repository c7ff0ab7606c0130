//! The queue on Amazon SQS (`IMS_QUEUE_URL`). Messages carry their attributes (type, line,
//! order, severity) as SQS message attributes; a received message is deleted only after it was
//! handled; one that keeps failing is moved to the dead-letter queue by the queue's redrive
//! policy after its `maxReceiveCount` (set by the infrastructure, see deploy/).

use aws_sdk_sqs::types::{MessageAttributeValue, MessageSystemAttributeName};
use aws_sdk_sqs::Client;

use super::{Attributes, Queue, QueueError, QueueFuture, Received};

pub struct SqsQueue {
    client: Client,
    url: String,
}

impl SqsQueue {
    pub fn new(sdk: &aws_config::SdkConfig, url: String) -> Self {
        Self {
            client: Client::new(sdk),
            url,
        }
    }
}

fn error<E: std::fmt::Display>(e: E) -> QueueError {
    QueueError(e.to_string().chars().take(200).collect())
}

fn attribute(value: &str) -> Result<MessageAttributeValue, QueueError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(error)
}

impl Queue for SqsQueue {
    fn name(&self) -> &'static str {
        "sqs"
    }

    fn send<'a>(
        &'a self,
        _dedupe_id: &'a str,
        body: &'a str,
        attributes: &'a Attributes,
    ) -> QueueFuture<'a, ()> {
        Box::pin(async move {
            let mut request = self
                .client
                .send_message()
                .queue_url(&self.url)
                .message_body(body);
            for (name, v) in attributes.pairs() {
                request = request.message_attributes(name, attribute(v)?);
            }
            request.send().await.map_err(error)?;
            Ok(())
        })
    }

    fn receive(&self, max: usize) -> QueueFuture<'_, Vec<Received>> {
        Box::pin(async move {
            let out = self
                .client
                .receive_message()
                .queue_url(&self.url)
                .max_number_of_messages(max.clamp(1, 10) as i32)
                .wait_time_seconds(1)
                .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
                .send()
                .await
                .map_err(error)?;
            Ok(out
                .messages()
                .iter()
                .filter_map(|m| {
                    let count = m
                        .attributes()
                        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                        .and_then(|c| c.parse().ok())
                        .unwrap_or(1);
                    Some(Received {
                        id: m.message_id()?.to_owned(),
                        receipt: m.receipt_handle()?.to_owned(),
                        body: m.body().unwrap_or_default().to_owned(),
                        receive_count: count,
                    })
                })
                .collect())
        })
    }

    fn delete<'a>(&'a self, message: &'a Received) -> QueueFuture<'a, ()> {
        Box::pin(async move {
            self.client
                .delete_message()
                .queue_url(&self.url)
                .receipt_handle(&message.receipt)
                .send()
                .await
                .map_err(error)?;
            Ok(())
        })
    }
}
