//! Object-level checks for every production route that takes an id: an id that names nothing is
//! `404` for every role allowed on the route (so a leader cannot tell another line's objects from
//! missing ones), and the database queue parks a message it could not handle.

use ims::auth::roles::Role;
use ims::http::access::{self, Access};
use serde_json::{json, Value};

use crate::helpers::*;
use crate::production::{day, Floor};

/// A valid body for each route with an id, so only the id can be wrong.
fn body_for(method: &str, path: &str) -> Option<Value> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    Some(match (method, path) {
        ("GET" | "DELETE", _) => Value::Null,
        ("PATCH", "/api/lines/{id}" | "/api/products/{id}") => json!({"name": "Renamed"}),
        ("PATCH", "/api/reasons/{id}") => json!({"label": "Relabelled"}),
        ("PATCH", "/api/orders/{id}") => json!({"customer": "Someone"}),
        ("PATCH", "/api/work-orders/{id}") => json!({"quantity": 5}),
        ("PATCH", "/api/alert-rules/{id}") => json!({"enabled": false}),
        ("PUT", "/api/lines/{id}/leaders") => json!({"user_ids": []}),
        ("POST", "/api/lines/{id}/reports") => json!({"date": day(-1)}),
        ("POST", "/api/work-orders/{id}/pause") => json!({"reason_code": "CHANGEOVER"}),
        ("POST", "/api/work-orders/{id}/output") => json!({"good": 1, "scrap": 0}),
        ("POST", "/api/work-orders/{id}/downtime") => json!({
            "reason_code": "FEEDER_JAM",
            "start": ims::clock::rfc3339(now - 600),
            "end": ims::clock::rfc3339(now - 300),
        }),
        ("POST", _) => json!({}),
        _ => return None,
    })
}

#[tokio::test]
async fn every_production_route_with_an_id_answers_404_for_an_unknown_one() {
    let f = Floor::new().await;
    let missing = uuid::Uuid::now_v7().to_string();
    let mut checked = 0;
    for r in access::table() {
        let production = [
            "/api/lines",
            "/api/products",
            "/api/reasons",
            "/api/orders",
            "/api/work-orders",
            "/api/kpi",
            "/api/alert",
            "/api/documents",
        ]
        .iter()
        .any(|p| r.path.starts_with(p));
        if !production || !r.path.contains("{id}") {
            continue;
        }
        let Access::Roles(roles) = r.access else {
            panic!("{} is public", r.path)
        };
        let body = body_for(r.method.as_str(), r.path)
            .unwrap_or_else(|| panic!("no body for {} {}", r.method, r.path));
        for role in roles {
            let who = match role {
                Role::Manager => &f.manager,
                Role::LineLeader => &f.leader,
                Role::Admin => panic!("{} allows ADMIN", r.path),
            };
            let mut req = f
                .app
                .client
                .request(
                    r.method.clone(),
                    f.app.url(&r.path.replace("{id}", &missing)),
                )
                .bearer_auth(&who.access)
                .header("If-Match", "\"1\"");
            if !body.is_null() {
                req = req.json(&body);
            }
            let what = format!("{role} {} {}", r.method, r.path);
            let response = req.send().await.unwrap();
            assert_eq!(response.status(), 404, "{what}");
            assert_problem(response, 404, "not_found").await;
            checked += 1;
        }
    }
    assert!(checked >= 25, "only {checked} checks");
}

#[tokio::test]
async fn the_database_queue_redelivers_unhandled_messages_then_parks_them() {
    // A migrated database with no IMS running on it, so no consumer competes for the messages.
    let test_db = TestDb::new().await;
    let config = ims::Config::from_env(&env_for(&test_db, &[])).unwrap();
    let db = ims::app::open_database(&config).await.unwrap();
    let queue = ims::events::db_queue::DbQueue::new(db.clone());
    use ims::events::Queue;
    let attrs = ims::events::Attributes::default();
    // Sent twice with the same id: one message.
    queue.send("poison-1", "{not json", &attrs).await.unwrap();
    queue.send("poison-1", "{not json", &attrs).await.unwrap();
    // Receive it without deleting it, as a failing handler would, and expire its lease by hand.
    for attempt in 1..=ims::events::MAX_RECEIVES {
        let got = queue.receive(10).await.unwrap();
        assert_eq!(got.len(), 1, "receive {attempt}");
        assert_eq!(got[0].receive_count, attempt);
        // Invisible while leased.
        assert!(queue.receive(10).await.unwrap().is_empty());
        sqlx::query("UPDATE queue_messages SET visible_at = 0")
            .execute(db.pool())
            .await
            .unwrap();
    }
    assert!(
        queue.receive(10).await.unwrap().is_empty(),
        "parked after too many receives"
    );
    assert_eq!(queue.dead_count().await.unwrap(), 1);

    // A handled message is deleted only with its current receipt.
    queue.send("ok-1", "{}", &attrs).await.unwrap();
    let first = queue.receive(1).await.unwrap().remove(0);
    sqlx::query("UPDATE queue_messages SET visible_at = 0 WHERE id = 'ok-1'")
        .execute(db.pool())
        .await
        .unwrap();
    let second = queue.receive(1).await.unwrap().remove(0);
    queue.delete(&first).await.unwrap();
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM queue_messages WHERE id = 'ok-1'")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(left, 1, "a stale receipt deleted a redelivered message");
    queue.delete(&second).await.unwrap();
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM queue_messages WHERE id = 'ok-1'")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(left, 0);
}
