//! Documents on S3, events on SQS and alerts on SNS, against `moto_server` on loopback: execution events travel
//! through the SQS queue (with their attributes) and raise alerts, which reach an SNS subscriber
//! queue with filterable attributes; a poison message lands in the dead-letter queue after the
//! redrive policy's receives; while the stand-in is down, the outbox holds events and delivers
//! them when it returns.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::*;
use crate::moto::Moto;
use crate::production::{json_of, Floor};

async fn sqs(moto: &Moto) -> aws_sdk_sqs::Client {
    let endpoint = url::Url::parse(&moto.endpoint).unwrap();
    let sdk = ims::aws::sdk_config_for(Some(&endpoint)).await.unwrap();
    aws_sdk_sqs::Client::new(&sdk)
}

/// Every message on a queue within the deadline, as (body, attributes).
async fn drain(
    client: &aws_sdk_sqs::Client,
    url: &str,
    want: usize,
    within: Duration,
) -> Vec<(String, Vec<(String, String)>)> {
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + within;
    while got.len() < want && std::time::Instant::now() < deadline {
        let out = client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .message_attribute_names("All")
            .send()
            .await
            .unwrap();
        for m in out.messages() {
            let mut attrs: Vec<(String, String)> = m
                .message_attributes()
                .map(|a| {
                    a.iter()
                        .map(|(k, v)| (k.clone(), v.string_value().unwrap_or_default().to_owned()))
                        .collect()
                })
                .unwrap_or_default();
            attrs.sort();
            got.push((m.body().unwrap_or_default().to_owned(), attrs));
            client
                .delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
    got
}

#[tokio::test]
async fn events_travel_on_sqs_and_alerts_reach_sns_subscribers_with_attributes() {
    let moto = Moto::start().await;
    let r = moto.setup("aws.py").await;
    let s = |k: &str| r[k].as_str().unwrap().to_owned();
    let app = spawn_app_with(&[
        ("IMS_AWS_ENDPOINT_URL", &moto.endpoint),
        ("IMS_QUEUE_URL", &s("queue")),
        ("IMS_ALERTS_TOPIC_ARN", &s("topic_arn")),
    ])
    .await;
    assert_eq!(app.state.queue.name(), "sqs");
    assert_eq!(app.state.alerts_channel.name(), "sns");
    let f = Floor::on(app).await;
    f.rule(json!({"kind": "scrap_rate", "threshold": 10})).await;
    let wo = f.published_task(200).await;
    json_of(f.act(&f.leader, &wo, "start", &json!({})).await, 200).await;
    json_of(
        f.act(
            &f.leader,
            &wo,
            "output",
            &json!({"good": 60, "scrap": 40, "scrap_reason": "TOMBSTONE"}),
        )
        .await,
        200,
    )
    .await;

    // The events went through SQS and were judged: the alert exists.
    let raised = eventually(Duration::from_secs(20), || async {
        json_of(f.app.get("/api/alerts", &f.manager.access).await, 200)
            .await
            .as_array()
            .unwrap()
            .len()
            == 1
    })
    .await;
    assert!(raised, "no alert raised from the SQS events");

    // The subscriber got the alert from SNS, with attributes to filter on.
    let client = sqs(&moto).await;
    let got = drain(&client, &s("subscriber_http"), 1, Duration::from_secs(20)).await;
    assert_eq!(got.len(), 1, "{got:?}");
    let (body, attrs) = &got[0];
    let alert: Value = serde_json::from_str(body).unwrap();
    assert_eq!(alert["kind"], "scrap_rate");
    let names: Vec<&str> = attrs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["line", "severity", "type"]);
    assert!(attrs.contains(&("type".into(), "alert.scrap_rate".into())));
    assert!(attrs.contains(&("line".into(), f.line.clone())));
    // Handled events were deleted from the queue.
    let left = drain(&client, &s("queue_http"), 1, Duration::from_secs(2)).await;
    assert!(left.is_empty(), "{left:?}");

    // A poison message is redelivered, then moved to the dead-letter queue by the redrive policy.
    client
        .send_message()
        .queue_url(s("queue_http"))
        .message_body("{not an event")
        .send()
        .await
        .unwrap();
    let dead = drain(&client, &s("dlq_http"), 1, Duration::from_secs(20)).await;
    assert_eq!(
        dead.len(),
        1,
        "the poison message did not reach the dead-letter queue"
    );
    assert_eq!(dead[0].0, "{not an event");
}

#[tokio::test]
async fn events_wait_in_the_outbox_while_the_queue_is_down_and_arrive_when_it_returns() {
    let moto = Moto::start().await;
    let r = moto.setup("aws.py").await;
    let s = |k: &str| r[k].as_str().unwrap().to_owned();
    let app = spawn_app_with(&[
        ("IMS_AWS_ENDPOINT_URL", &moto.endpoint),
        ("IMS_QUEUE_URL", &s("queue")),
        ("IMS_ALERTS_TOPIC_ARN", &s("topic_arn")),
    ])
    .await;
    let f = Floor::on(app).await;
    f.rule(json!({"kind": "scrap_rate", "threshold": 10})).await;
    let wo = f.published_task(200).await;
    json_of(f.act(&f.leader, &wo, "start", &json!({})).await, 200).await;

    // The stand-in goes away; the shop floor keeps working and nothing is lost.
    let port = moto.port();
    drop(moto);
    json_of(
        f.act(
            &f.leader,
            &wo,
            "output",
            &json!({"good": 60, "scrap": 40, "scrap_reason": "TOMBSTONE"}),
        )
        .await,
        200,
    )
    .await;
    let held = eventually(Duration::from_secs(10), || async {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE kind = 'event' AND status = 'pending' AND last_error IS NOT NULL")
            .fetch_one(f.app.state.db.pool()).await.unwrap();
        n > 0
    })
    .await;
    assert!(
        held,
        "events were not held in the outbox while the queue was down"
    );
    assert!(
        json_of(f.app.get("/api/alerts", &f.manager.access).await, 200)
            .await
            .as_array()
            .unwrap()
            .is_empty()
    );

    // It comes back (empty, as moto keeps no state; the queues are created again).
    let moto = Moto::start_on(port).await;
    moto.setup("aws.py").await;
    let raised = eventually(Duration::from_secs(90), || async {
        json_of(f.app.get("/api/alerts", &f.manager.access).await, 200)
            .await
            .as_array()
            .unwrap()
            .len()
            == 1
    })
    .await;
    assert!(
        raised,
        "the held events were not delivered once the queue returned"
    );
    // And the alert's own messages (the SNS publication, the managers' mail) follow: nothing is
    // left undelivered.
    let drained = eventually(Duration::from_secs(60), || async {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE status <> 'sent'")
            .fetch_one(f.app.state.db.pool())
            .await
            .unwrap();
        n == 0
    })
    .await;
    assert!(drained, "messages were left in the outbox");
}

#[tokio::test]
async fn documents_on_s3_are_encrypted_with_kms_and_round_trip() {
    let moto = Moto::start().await;
    moto.setup("aws.py").await;
    let app = spawn_app_with(&[
        ("IMS_AWS_ENDPOINT_URL", &moto.endpoint),
        ("IMS_STORAGE_URL", "s3://ims-documents/plant-1"),
    ])
    .await;
    assert_eq!(app.state.storage.name(), "s3");
    let f = Floor::on(app).await;
    let pdf = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n".to_vec();
    let r = f
        .app
        .client
        .post(f.app.url(&format!(
            "/api/documents?owner_type=line&owner_id={}&kind=instruction&name=setup.pdf",
            f.line
        )))
        .bearer_auth(&f.manager.access)
        .header("content-type", "application/pdf")
        .body(pdf.clone())
        .send()
        .await
        .unwrap();
    let doc = json_of(r, 201).await;
    let id = doc["id"].as_str().unwrap();
    let got = f
        .app
        .get(&format!("/api/documents/{id}/content"), &f.leader.access)
        .await;
    assert_eq!(got.status(), 200);
    assert_eq!(got.bytes().await.unwrap().to_vec(), pdf);

    // The object sits under the prefix, encrypted with KMS.
    let endpoint = url::Url::parse(&moto.endpoint).unwrap();
    let sdk = ims::aws::sdk_config_for(Some(&endpoint)).await.unwrap();
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    let listed = s3
        .list_objects_v2()
        .bucket("ims-documents")
        .prefix("plant-1/")
        .send()
        .await
        .unwrap();
    let keys: Vec<String> = listed
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let head = s3
        .head_object()
        .bucket("ims-documents")
        .key(&keys[0])
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.server_side_encryption().map(|e| e.as_str()),
        Some("aws:kms")
    );

    let gone = f
        .app
        .client
        .delete(f.app.url(&format!("/api/documents/{id}")))
        .bearer_auth(&f.manager.access)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 204);
    let listed = s3
        .list_objects_v2()
        .bucket("ims-documents")
        .prefix("plant-1/")
        .send()
        .await
        .unwrap();
    assert!(listed.contents().is_empty());
}
