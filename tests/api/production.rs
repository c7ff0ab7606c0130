//! Production management over HTTP: planning by a MANAGER, execution by the line's leaders,
//! object-level visibility (another line's work is 404), versions and If-Match, bad input,
//! OEE from known inputs, documents, alerts through the queue, reports and the demo-free basics.

use std::time::Duration;

use ims::auth::roles::Role;
use ims::production::calendar::format_date;
use serde_json::{json, Value};

use crate::helpers::*;

pub struct Floor {
    pub app: TestApp,
    pub manager: Session,
    pub leader: Session,
    pub other_leader: Session,
    pub line: String,
    pub other_line: String,
    pub product: String,
    pub order: String,
}

pub fn day(offset: i64) -> String {
    format_date(time::OffsetDateTime::now_utc().date() + time::Duration::days(offset))
}

pub fn shifts() -> Value {
    json!([
        {"name": "Day", "start": "00:00", "minutes": 720, "break_minutes": 60},
        {"name": "Night", "start": "12:00", "minutes": 720, "break_minutes": 60}
    ])
}

pub async fn json_of(response: reqwest::Response, status: u16) -> Value {
    let got = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(got, status, "{body}");
    body
}

impl Floor {
    pub async fn new() -> Self {
        Self::on(spawn_app().await).await
    }

    pub async fn on(app: TestApp) -> Self {
        let manager = app.login_as(&[Role::Manager]).await;
        let leader = app.login_as(&[Role::LineLeader]).await;
        let other_leader = app.login_as(&[Role::LineLeader]).await;
        let mut ids = Vec::new();
        for (code, who) in [("SMT-1", &leader), ("SMT-2", &other_leader)] {
            let line = json_of(
                app.post("/api/lines", &manager.access, &json!({
                    "code": code, "name": format!("{code} line"), "kind": "SMT", "shifts": shifts(),
                }))
                .await,
                201,
            )
            .await;
            let id = line["id"].as_str().unwrap().to_owned();
            json_of(
                app.client
                    .put(app.url(&format!("/api/lines/{id}/leaders")))
                    .bearer_auth(&manager.access)
                    .json(&json!({ "user_ids": [who.user_id] }))
                    .send()
                    .await
                    .unwrap(),
                200,
            )
            .await;
            ids.push(id);
        }
        let product = json_of(
            app.post("/api/products", &manager.access, &json!({
                "sku": "PCB-MAIN-V2", "name": "Main board", "ideal_cycle_seconds": {"SMT": 15.0, "TEST": 40.0},
            }))
            .await,
            201,
        )
        .await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let order = json_of(
            app.post(
                "/api/orders",
                &manager.access,
                &json!({
                    "number": "SO-1001", "customer": "Acme Controls", "product_id": product,
                    "quantity": 1000, "due_date": day(7), "priority": "high",
                }),
            )
            .await,
            201,
        )
        .await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        Self {
            app,
            manager,
            leader,
            other_leader,
            line: ids[0].clone(),
            other_line: ids[1].clone(),
            product,
            order,
        }
    }

    /// Schedules a work order on a line for a date and returns it.
    pub async fn schedule(&self, line: &str, date: &str, quantity: i64) -> Value {
        json_of(
            self.app
                .post("/api/work-orders", &self.manager.access, &json!({
                    "order_id": self.order, "line_id": line, "work_date": date, "shift": "Day", "quantity": quantity,
                }))
                .await,
            201,
        )
        .await
    }

    pub async fn publish(&self, from: &str, to: &str) -> Value {
        json_of(
            self.app
                .post(
                    "/api/schedule/publish",
                    &self.manager.access,
                    &json!({ "from": from, "to": to }),
                )
                .await,
            200,
        )
        .await
    }

    /// An alert rule created by the manager; its JSON.
    pub async fn rule(&self, body: Value) -> Value {
        json_of(
            self.app
                .post("/api/alert-rules", &self.manager.access, &body)
                .await,
            201,
        )
        .await
    }

    /// A published work order for today on the leader's line.
    pub async fn published_task(&self, quantity: i64) -> String {
        let wo = self.schedule(&self.line, &day(0), quantity).await;
        self.publish(&day(0), &day(0)).await;
        wo["id"].as_str().unwrap().to_owned()
    }

    /// `n` reports of one good unit on `wo` by the leader, all sent at once (with `key` as their
    /// `Idempotency-Key`, if given); the responses in any order.
    pub async fn output_burst(
        &self,
        wo: &str,
        n: usize,
        key: Option<&str>,
    ) -> Vec<reqwest::Response> {
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..n {
            let mut request = self
                .app
                .client
                .post(self.app.url(&format!("/api/work-orders/{wo}/output")))
                .bearer_auth(&self.leader.access)
                .json(&json!({"good": 1, "scrap": 0}));
            if let Some(key) = key {
                request = request.header("Idempotency-Key", key);
            }
            set.spawn(async move { request.send().await.unwrap() });
        }
        set.join_all().await
    }

    pub async fn act(
        &self,
        who: &Session,
        wo: &str,
        action: &str,
        body: &Value,
    ) -> reqwest::Response {
        self.app
            .post(
                &format!("/api/work-orders/{wo}/{action}"),
                &who.access,
                body,
            )
            .await
    }
}

#[tokio::test]
async fn a_work_order_goes_from_plan_to_completion_with_every_step_recorded() {
    let f = Floor::new().await;
    let wo = f.schedule(&f.line, &day(0), 500).await;
    let id = wo["id"].as_str().unwrap();
    assert_eq!(wo["status"], "planned");
    assert_eq!(wo["ideal_cycle_seconds"], 15.0);

    // A draft is invisible on the shop floor until the schedule is published.
    assert_problem(
        f.app
            .get(&format!("/api/work-orders/{id}"), &f.leader.access)
            .await,
        404,
        "not_found",
    )
    .await;
    let tasks = json_of(f.app.get("/api/my/tasks", &f.leader.access).await, 200).await;
    assert_eq!(tasks.as_array().unwrap().len(), 0);
    let published = f.publish(&day(0), &day(0)).await;
    assert_eq!(published["published"], 1);
    assert_eq!(published["leaders_notified"], 1);
    let tasks = json_of(f.app.get("/api/my/tasks", &f.leader.access).await, 200).await;
    assert_eq!(tasks[0]["id"], id);

    // Illegal transitions are 409 and change nothing.
    assert_problem(
        f.act(
            &f.leader,
            id,
            "pause",
            &json!({"reason_code": "CHANGEOVER"}),
        )
        .await,
        409,
        "illegal_transition",
    )
    .await;
    assert_problem(
        f.act(&f.leader, id, "output", &json!({"good": 1, "scrap": 0}))
            .await,
        409,
        "not_running",
    )
    .await;

    let started = json_of(f.act(&f.leader, id, "start", &json!({})).await, 200).await;
    assert_eq!(started["status"], "in_progress");
    assert!(started["started_at"].is_string());
    assert_problem(
        f.act(&f.leader, id, "start", &json!({})).await,
        409,
        "illegal_transition",
    )
    .await;

    let after = json_of(
        f.act(
            &f.leader,
            id,
            "output",
            &json!({"good": 120, "scrap": 3, "scrap_reason": "SOLDER_BRIDGE"}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(
        (
            after["good_quantity"].as_i64(),
            after["scrap_quantity"].as_i64()
        ),
        (Some(120), Some(3))
    );

    let paused = json_of(
        f.act(
            &f.leader,
            id,
            "pause",
            &json!({"reason_code": "FEEDER_JAM", "note": "feeder 12"}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(paused["status"], "paused");
    assert_eq!(paused["paused_reason"], "FEEDER_JAM");
    let resumed = json_of(f.act(&f.leader, id, "resume", &json!({})).await, 200).await;
    assert_eq!(resumed["status"], "in_progress");
    assert!(resumed["paused_reason"].is_null());

    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let stop = json!({
        "reason_code": "MATERIAL_SHORTAGE",
        "start": ims::clock::rfc3339(now - 3 * 3600),
        "end": ims::clock::rfc3339(now - 3 * 3600 + 600),
        "note": "reels late",
    });
    json_of(f.act(&f.leader, id, "downtime", &stop).await, 200).await;
    // The same stop again overlaps itself.
    assert_problem(
        f.act(&f.leader, id, "downtime", &stop).await,
        409,
        "downtime_overlap",
    )
    .await;

    let done = json_of(f.act(&f.leader, id, "complete", &json!({})).await, 200).await;
    assert_eq!(done["status"], "completed");
    assert!(done["completed_at"].is_string());
    // Nothing more may be reported on a completed work order.
    assert_problem(
        f.act(&f.leader, id, "output", &json!({"good": 1, "scrap": 0}))
            .await,
        409,
        "not_running",
    )
    .await;
    assert_problem(
        f.act(&f.leader, id, "downtime", &stop).await,
        409,
        "not_running",
    )
    .await;
    assert_problem(
        f.act(&f.leader, id, "resume", &json!({})).await,
        409,
        "illegal_transition",
    )
    .await;

    let history = json_of(
        f.app
            .get(&format!("/api/work-orders/{id}/history"), &f.leader.access)
            .await,
        200,
    )
    .await;
    let kinds: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "scheduled",
            "started",
            "output",
            "paused",
            "resumed",
            "downtime",
            "completed"
        ]
    );
    for h in history.as_array().unwrap() {
        assert!(
            ims::clock::parse_rfc3339(h["at"].as_str().unwrap()).is_some(),
            "{h}"
        );
    }
    assert_eq!(history[1]["from_status"], "planned");
    assert_eq!(history[1]["to_status"], "in_progress");
    assert_eq!(history[1]["actor_id"], f.leader.user_id.as_str());

    // The order's status follows its work orders.
    let order = json_of(
        f.app
            .get(&format!("/api/orders/{}", f.order), &f.manager.access)
            .await,
        200,
    )
    .await;
    // 120 good of 1,000 ordered: the finished work order does not finish the order.
    assert_eq!(order["status"], "in_progress", "{order}");
    assert_eq!(order["progress"]["completed_quantity"], 120);
}

#[tokio::test]
async fn a_leader_sees_and_acts_only_on_the_lines_they_lead() {
    let f = Floor::new().await;
    let mine = f.published_task(100).await;
    let theirs = f.schedule(&f.other_line, &day(0), 100).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    f.publish(&day(0), &day(0)).await;

    // Another line's work order is not found, for reading and for every action.
    for path in [
        format!("/api/work-orders/{theirs}"),
        format!("/api/work-orders/{theirs}/history"),
    ] {
        assert_problem(f.app.get(&path, &f.leader.access).await, 404, "not_found").await;
    }
    for action in ["start", "pause", "resume", "output", "downtime", "complete"] {
        let body = json!({"good": 1, "scrap": 0});
        let r = f
            .act(
                &f.leader,
                &theirs,
                action,
                &if action == "output" { body } else { json!({}) },
            )
            .await;
        assert!(
            matches!(r.status().as_u16(), 404 | 400 | 422),
            "{action}: {}",
            r.status()
        );
        if action != "output" && action != "pause" && action != "downtime" {
            assert_problem(r, 404, "not_found").await;
        }
    }
    let theirs_start = f.act(&f.leader, &theirs, "start", &json!({})).await;
    assert_problem(theirs_start, 404, "not_found").await;
    let tasks = json_of(f.app.get("/api/my/tasks", &f.leader.access).await, 200).await;
    let ids: Vec<&str> = tasks
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [mine.as_str()]);

    // A MANAGER plans but does not execute; an ADMIN does neither.
    assert_problem(
        f.act(&f.manager, &mine, "start", &json!({})).await,
        403,
        "forbidden",
    )
    .await;
    let admin = f.app.login_as(&[Role::Admin]).await;
    assert_problem(
        f.app
            .get(&format!("/api/work-orders/{mine}"), &admin.access)
            .await,
        403,
        "forbidden",
    )
    .await;
    assert_problem(
        f.app.get("/api/lines", &f.leader.access).await,
        403,
        "forbidden",
    )
    .await;

    // A leader removed from the line loses it at once.
    json_of(
        f.app
            .client
            .put(f.app.url(&format!("/api/lines/{}/leaders", f.line)))
            .bearer_auth(&f.manager.access)
            .json(&json!({"user_ids": []}))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_problem(
        f.app
            .get(&format!("/api/work-orders/{mine}"), &f.leader.access)
            .await,
        404,
        "not_found",
    )
    .await;
    // Only LINE_LEADERs can lead a line.
    assert_problem(
        f.app
            .client
            .put(f.app.url(&format!("/api/lines/{}/leaders", f.line)))
            .bearer_auth(&f.manager.access)
            .json(&json!({"user_ids": [f.manager.user_id]}))
            .send()
            .await
            .unwrap(),
        422,
        "invalid_leaders",
    )
    .await;

    // A manager picks leaders from the enabled LINE_LEADERs, and only from them.
    let candidates = json_of(f.app.get("/api/leaders", &f.manager.access).await, 200).await;
    let ids: Vec<&str> = candidates
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&f.leader.user_id.as_str()), "{candidates}");
    assert!(!ids.contains(&f.manager.user_id.as_str()), "{candidates}");
    assert!(!ids.contains(&admin.user_id.as_str()), "{candidates}");
    assert_problem(
        f.app.get("/api/leaders", &f.leader.access).await,
        403,
        "forbidden",
    )
    .await;
    let r = f
        .app
        .patch(
            &format!("/api/admin/users/{}", f.leader.user_id),
            &admin.access,
            &json!({"disabled": true}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let candidates = json_of(f.app.get("/api/leaders", &f.manager.access).await, 200).await;
    assert!(
        !candidates.to_string().contains(&f.leader.user_id),
        "a disabled leader is no candidate: {candidates}"
    );
}

/// A tablet that never saw the answer sends its report again with the same `Idempotency-Key`:
/// counted once, however many copies arrive and whenever; the key cannot name another report.
#[tokio::test]
async fn output_sent_again_with_its_idempotency_key_counts_once() {
    let f = Floor::new().await;
    let task = f.published_task(100).await;
    json_of(f.act(&f.leader, &task, "start", &json!({})).await, 200).await;
    let send = |key: &str, good: i64, if_match: Option<&str>| {
        let mut r = f
            .app
            .client
            .post(f.app.url(&format!("/api/work-orders/{task}/output")))
            .bearer_auth(&f.leader.access)
            .header("Idempotency-Key", key)
            .json(&json!({"good": good, "scrap": 0}));
        if let Some(v) = if_match {
            r = r.header("If-Match", v);
        }
        r.send()
    };
    let good_of = |wo: &Value| wo["good_quantity"].as_i64().unwrap();
    let first = "8e03978e-40d5-43e8-bc93-6894a57f9324";
    assert_eq!(
        good_of(&json_of(send(first, 5, None).await.unwrap(), 200).await),
        5
    );
    assert_eq!(
        good_of(&json_of(send(first, 5, None).await.unwrap(), 200).await),
        5
    );
    // Quoted as the draft standard writes it: the same key.
    let quoted = format!("\"{first}\"");
    assert_eq!(
        good_of(&json_of(send(&quoted, 5, None).await.unwrap(), 200).await),
        5
    );
    // The version the tablet sent has moved on since (its own report moved it): still the repeat.
    assert_eq!(
        good_of(&json_of(send(first, 5, Some("\"1\"")).await.unwrap(), 200).await),
        5
    );
    assert_problem(
        send(first, 6, None).await.unwrap(),
        422,
        "idempotency_key_reused",
    )
    .await;
    assert_problem(
        send("not a key!", 1, None).await.unwrap(),
        400,
        "invalid_idempotency_key",
    )
    .await;
    assert_eq!(
        good_of(&json_of(send("second", 5, None).await.unwrap(), 200).await),
        10
    );

    // Eight copies at the same moment: one counted, all answered 200.
    let copies = f.output_burst(&task, 8, Some("burst")).await;
    let statuses: Vec<u16> = copies.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(statuses, vec![200; 8]);
    let reports: Vec<(i64, Option<String>)> = sqlx::query_as(
        "SELECT good, idempotency_key FROM output_reports WHERE work_order_id = $1 ORDER BY at, good",
    )
    .bind(&task)
    .fetch_all(f.app.state.db.pool())
    .await
    .unwrap();
    assert_eq!(reports.len(), 3, "{reports:?}");
    assert_eq!(reports.iter().map(|r| r.0).sum::<i64>(), 11);

    // Completed since: the repeat is still answered as counted, a new report is refused.
    json_of(f.act(&f.leader, &task, "complete", &json!({})).await, 200).await;
    let now = json_of(send(first, 5, None).await.unwrap(), 200).await;
    assert_eq!(
        (now["status"].as_str(), good_of(&now)),
        (Some("completed"), 11)
    );
    assert_problem(send("third", 1, None).await.unwrap(), 409, "not_running").await;
}

#[tokio::test]
async fn concurrent_edits_are_detected_with_versions() {
    let f = Floor::new().await;
    let wo = f.schedule(&f.line, &day(1), 300).await;
    let id = wo["id"].as_str().unwrap();
    let patch = |version: Option<&str>, body: Value| {
        let mut r = f
            .app
            .client
            .patch(f.app.url(&format!("/api/work-orders/{id}")))
            .bearer_auth(&f.manager.access);
        if let Some(v) = version {
            r = r.header("If-Match", v);
        }
        r.json(&body).send()
    };
    // Without If-Match a blind overwrite is refused.
    assert_problem(
        patch(None, json!({"quantity": 400})).await.unwrap(),
        428,
        "if_match_required",
    )
    .await;
    assert_problem(
        patch(Some("nonsense"), json!({"quantity": 400}))
            .await
            .unwrap(),
        400,
        "invalid_if_match",
    )
    .await;

    let got = f
        .app
        .get(&format!("/api/work-orders/{id}"), &f.manager.access)
        .await;
    let etag = got.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(etag, "\"1\"");
    // Two planners edit version 1 at once: exactly one wins, the other is told it is stale.
    let (a, b) = tokio::join!(
        patch(Some(&etag), json!({"quantity": 400})),
        patch(Some(&etag), json!({"work_date": day(2)}))
    );
    let mut statuses = [a.unwrap().status().as_u16(), b.unwrap().status().as_u16()];
    statuses.sort();
    assert_eq!(statuses, [200, 409]);
    let now = f
        .app
        .get(&format!("/api/work-orders/{id}"), &f.manager.access)
        .await;
    assert_eq!(now.headers()["etag"], "\"2\"");
    let stale = patch(Some("\"1\""), json!({"sequence": 5})).await.unwrap();
    let body = assert_problem(stale, 409, "stale_version").await;
    assert!(body["detail"].as_str().unwrap().contains('2'));
    json_of(
        patch(Some("\"2\""), json!({"sequence": 5})).await.unwrap(),
        200,
    )
    .await;

    // Optional If-Match on execution: a stale one is refused, none at all is fine.
    let task = f.published_task(50).await;
    let start = f
        .app
        .client
        .post(f.app.url(&format!("/api/work-orders/{task}/start")))
        .bearer_auth(&f.leader.access)
        .header("If-Match", "\"7\"")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_problem(start, 409, "stale_version").await;
    json_of(f.act(&f.leader, &task, "start", &json!({})).await, 200).await;
    // Sixteen reports at the same moment (one work order, tablets at both ends of the line) all
    // count: output is added on top of what others reported, never refused as `busy`.
    let statuses: Vec<u16> = f
        .output_burst(&task, 16, None)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let good_of = || async {
        json_of(
            f.app
                .get(&format!("/api/work-orders/{task}"), &f.leader.access)
                .await,
            200,
        )
        .await["good_quantity"]
            .as_i64()
            .unwrap()
    };
    assert_eq!(good_of().await, 16);
    // At the quantity (50), a burst of 40 is cut exactly there: 34 counted, 6 refused whole.
    let mut refused = 0;
    for r in f.output_burst(&task, 40, None).await {
        if r.status() == 200 {
            continue;
        }
        assert_problem(r, 422, "exceeds_quantity").await;
        refused += 1;
    }
    assert_eq!(refused, 6);
    assert_eq!(good_of().await, 50);
    let reports: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM output_reports WHERE work_order_id = $1")
            .bind(&task)
            .fetch_one(f.app.state.db.pool())
            .await
            .unwrap();
    assert_eq!(reports, 50, "one stored report per counted unit");

    // Cancelled work can no longer be rescheduled or started.
    let planned = f.schedule(&f.line, &day(3), 10).await;
    let pid = planned["id"].as_str().unwrap();
    json_of(
        f.app
            .post(
                &format!("/api/work-orders/{pid}/cancel"),
                &f.manager.access,
                &json!({}),
            )
            .await,
        200,
    )
    .await;
    assert_problem(
        f.app
            .post(
                &format!("/api/work-orders/{pid}/cancel"),
                &f.manager.access,
                &json!({}),
            )
            .await,
        409,
        "illegal_transition",
    )
    .await;
}

#[tokio::test]
async fn bad_production_input_gets_clear_problems_and_writes_nothing() {
    let f = Floor::new().await;
    let m = &f.manager.access;
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        (
            "/api/lines",
            json!({"code": "SMT 1!", "name": "x", "kind": "SMT", "shifts": shifts()}),
            422,
            "invalid_code",
        ),
        (
            "/api/lines",
            json!({"code": "SMT-9", "name": "x", "kind": "SMT", "shifts": []}),
            422,
            "invalid_shifts",
        ),
        (
            "/api/lines",
            json!({"code": "SMT-9", "name": "x", "kind": "SMT", "shifts": [{"name": "A", "start": "25:00", "minutes": 60, "break_minutes": 0}]}),
            422,
            "invalid_shifts",
        ),
        (
            "/api/lines",
            json!({"code": "SMT-9", "name": "x", "kind": "WELD", "shifts": shifts()}),
            400,
            "invalid_body",
        ),
        (
            "/api/lines",
            json!({"code": "SMT-1", "name": "dup", "kind": "SMT", "shifts": shifts()}),
            409,
            "code_taken",
        ),
        (
            "/api/lines",
            json!({"code": "SMT-9", "name": "x", "kind": "SMT", "shifts": shifts(), "id": "mine"}),
            400,
            "invalid_body",
        ),
        (
            "/api/products",
            json!({"sku": "X-1", "name": "x", "ideal_cycle_seconds": {"SMT": -1.0}}),
            422,
            "invalid_cycle_time",
        ),
        (
            "/api/products",
            json!({"sku": "X-1", "name": "x", "ideal_cycle_seconds": {}}),
            422,
            "invalid_cycle_time",
        ),
        (
            "/api/orders",
            json!({"number": "SO-2", "customer": "A", "product_id": f.product, "quantity": -5, "due_date": day(3)}),
            422,
            "invalid_quantity",
        ),
        (
            "/api/orders",
            json!({"number": "SO-2", "customer": "A", "product_id": f.product, "quantity": 100_000_000_000i64, "due_date": day(3)}),
            422,
            "invalid_quantity",
        ),
        (
            "/api/orders",
            json!({"number": "SO-2", "customer": "A", "product_id": f.product, "quantity": 5, "due_date": "2026-02-30"}),
            422,
            "invalid_date",
        ),
        (
            "/api/orders",
            json!({"number": "SO-2", "customer": "A", "product_id": "nope", "quantity": 5, "due_date": day(3)}),
            422,
            "unknown_product",
        ),
        (
            "/api/orders",
            json!({"number": "SO-1001", "customer": "A", "product_id": f.product, "quantity": 5, "due_date": day(3)}),
            409,
            "number_taken",
        ),
        (
            "/api/orders",
            json!({"number": "SO-2", "customer": "A", "product_id": f.product, "quantity": 1.5, "due_date": day(3)}),
            400,
            "invalid_body",
        ),
        (
            "/api/work-orders",
            json!({"order_id": f.order, "line_id": f.line, "work_date": "tomorrow", "shift": "Day", "quantity": 5}),
            422,
            "invalid_date",
        ),
        (
            "/api/work-orders",
            json!({"order_id": f.order, "line_id": f.line, "work_date": day(1), "shift": "Brunch", "quantity": 5}),
            422,
            "unknown_shift",
        ),
        (
            "/api/work-orders",
            json!({"order_id": f.order, "line_id": f.line, "work_date": day(1), "shift": "Day", "quantity": 0}),
            422,
            "invalid_quantity",
        ),
        (
            "/api/work-orders",
            json!({"order_id": f.order, "line_id": f.line, "work_date": day(1), "shift": "Day", "quantity": 5, "stage": "TEST"}),
            422,
            "stage_mismatch",
        ),
        (
            "/api/schedule/publish",
            json!({"from": day(5), "to": day(1)}),
            422,
            "invalid_range",
        ),
        (
            "/api/alert-rules",
            json!({"kind": "scrap_rate", "threshold": 150}),
            422,
            "invalid_threshold",
        ),
        (
            "/api/reasons",
            json!({"kind": "downtime", "code": "CHANGEOVER", "label": "again"}),
            409,
            "code_taken",
        ),
    ];
    for (path, body, status, code) in cases {
        let r = f.app.post(path, m, &body).await;
        let got = r.status().as_u16();
        let problem: Value = r.json().await.unwrap();
        assert_eq!(
            (got, problem["code"].as_str().unwrap_or_default()),
            (status, code),
            "{path} {body}: {problem}"
        );
    }
    // Nothing half-written: still exactly the two lines, one product, one order, no work orders.
    assert_eq!(
        json_of(f.app.get("/api/lines", m).await, 200)
            .await
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        json_of(f.app.get("/api/products", m).await, 200)
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        json_of(f.app.get("/api/orders", m).await, 200).await["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let all = json_of(
        f.app
            .get(
                &format!("/api/work-orders?from={}&to={}", day(-1), day(30)),
                m,
            )
            .await,
        200,
    )
    .await;
    assert_eq!(all.as_array().unwrap().len(), 0);

    // Execution input.
    let wo = f.published_task(100).await;
    json_of(f.act(&f.leader, &wo, "start", &json!({})).await, 200).await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let t = ims::clock::rfc3339;
    let execution: Vec<(&str, Value, u16, &str)> = vec![
        (
            "output",
            json!({"good": -1, "scrap": 0}),
            422,
            "invalid_quantity",
        ),
        (
            "output",
            json!({"good": 0, "scrap": 0}),
            422,
            "invalid_quantity",
        ),
        (
            "output",
            json!({"good": 0, "scrap": 2}),
            422,
            "scrap_reason_required",
        ),
        (
            "output",
            json!({"good": 0, "scrap": 2, "scrap_reason": "BAD_LUCK"}),
            422,
            "unknown_reason",
        ),
        (
            "output",
            json!({"good": 101, "scrap": 0}),
            422,
            "exceeds_quantity",
        ),
        (
            "output",
            json!({"good": "10", "scrap": 0}),
            400,
            "invalid_body",
        ),
        (
            "pause",
            json!({"reason_code": "SOLDER_BRIDGE"}),
            422,
            "unknown_reason",
        ),
        (
            "downtime",
            json!({"reason_code": "FEEDER_JAM", "start": t(now - 60), "end": t(now - 120)}),
            422,
            "invalid_interval",
        ),
        (
            "downtime",
            json!({"reason_code": "FEEDER_JAM", "start": t(now - 60), "end": t(now + 3600)}),
            422,
            "invalid_interval",
        ),
        (
            "downtime",
            json!({"reason_code": "FEEDER_JAM", "start": "yesterday", "end": t(now)}),
            422,
            "invalid_time",
        ),
        (
            "downtime",
            json!({"reason_code": "FEEDER_JAM", "start": t(now - 30 * 86400), "end": t(now - 29 * 86400)}),
            422,
            "invalid_interval",
        ),
    ];
    for (action, body, status, code) in execution {
        let r = f.act(&f.leader, &wo, action, &body).await;
        let got = r.status().as_u16();
        let problem: Value = r.json().await.unwrap();
        assert_eq!(
            (got, problem["code"].as_str().unwrap_or_default()),
            (status, code),
            "{action} {body}: {problem}"
        );
    }
    let after = json_of(
        f.app
            .get(&format!("/api/work-orders/{wo}"), &f.leader.access)
            .await,
        200,
    )
    .await;
    assert_eq!(
        (
            after["good_quantity"].as_i64(),
            after["scrap_quantity"].as_i64(),
            after["version"].as_i64()
        ),
        (Some(0), Some(0), Some(2))
    );
}

#[tokio::test]
async fn oee_is_computed_from_its_inputs_and_rolled_up() {
    let f = Floor::new().await;
    let yesterday = day(-1);
    let wo = f.schedule(&f.line, &yesterday, 2000).await;
    let wo_id = wo["id"].as_str().unwrap();
    // Known history: yesterday's Day shift (00:00–12:00 UTC, 60 min of breaks), 2,000 units at
    // 15 s ideal, 200 of them scrap, and one hour of MACHINE_FAULT.
    let midnight = time::OffsetDateTime::now_utc()
        .date()
        .previous_day()
        .unwrap()
        .midnight()
        .assume_utc()
        .unix_timestamp();
    let pool = f.app.state.db.pool();
    sqlx::query(
        "INSERT INTO output_reports (id, work_order_id, line_id, work_date, shift, at, good, scrap, scrap_reason, ideal_cycle_ms, actor_id)
         VALUES ($1, $2, $3, $4, 'Day', $5, 1800, 200, 'TOMBSTONE', 15000, NULL)",
    )
    .bind(uuid::Uuid::now_v7().to_string()).bind(wo_id).bind(&f.line).bind(&yesterday).bind(midnight + 2 * 3600)
    .execute(pool).await.unwrap();
    sqlx::query(
        "INSERT INTO downtimes (id, line_id, work_order_id, reason_code, started_at, ended_at, source, note, actor_id)
         VALUES ($1, $2, $3, 'MACHINE_FAULT', $4, $5, 'report', '', NULL)",
    )
    .bind(uuid::Uuid::now_v7().to_string()).bind(&f.line).bind(wo_id).bind(midnight + 3 * 3600).bind(midnight + 4 * 3600)
    .execute(pool).await.unwrap();

    let kpi = json_of(
        f.app
            .get(
                &format!(
                    "/api/kpi/lines/{}?from={yesterday}&to={yesterday}&group=shift",
                    f.line
                ),
                &f.manager.access,
            )
            .await,
        200,
    )
    .await;
    let bucket = &kpi["buckets"][0];
    assert_eq!(bucket["period"], format!("{yesterday}/Day"));
    assert_eq!(bucket["planned_production_seconds"], 660 * 60);
    assert_eq!(bucket["downtime_seconds"], 3600);
    assert_eq!(bucket["run_time_seconds"], 600 * 60);
    assert_eq!(bucket["ideal_cycle_seconds_total"], 30000.0);
    assert_eq!(
        (
            bucket["good_count"].as_i64(),
            bucket["scrap_count"].as_i64(),
            bucket["total_count"].as_i64()
        ),
        (Some(1800), Some(200), Some(2000))
    );
    assert_eq!(bucket["planned_quantity"], 2000);
    assert_eq!(bucket["availability"], 0.9091);
    assert_eq!(bucket["performance"], 0.8333);
    assert_eq!(bucket["quality"], 0.9);
    assert_eq!(bucket["oee"], 0.6818);
    assert_eq!(kpi["total"]["oee"], 0.6818);

    // A week of days with one idle: the roll-up adds inputs, and idle days have no factors.
    let week = json_of(
        f.app
            .get(
                &format!(
                    "/api/kpi/lines/{}?from={}&to={yesterday}&group=week",
                    f.line,
                    day(-7)
                ),
                &f.manager.access,
            )
            .await,
        200,
    )
    .await;
    let planned: i64 = week["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["planned_production_seconds"].as_i64().unwrap())
        .sum();
    assert_eq!(planned, 660 * 60);

    let pareto = json_of(
        f.app
            .get(
                &format!("/api/kpi/downtime-pareto?from={yesterday}&to={yesterday}"),
                &f.manager.access,
            )
            .await,
        200,
    )
    .await;
    assert_eq!(pareto[0]["reason_code"], "MACHINE_FAULT");
    assert_eq!(pareto[0]["minutes"], 60.0);
    assert_eq!(pareto[0]["cumulative_share"], 1.0);
    assert_eq!(pareto[0]["label"], "Machine fault");

    let summary = json_of(
        f.app
            .get(
                &format!("/api/kpi/summary?date={yesterday}"),
                &f.manager.access,
            )
            .await,
        200,
    )
    .await;
    assert_eq!(summary["lines"].as_array().unwrap().len(), 2);
    assert_eq!(summary["factory"]["oee"], 0.6818);

    // The daily report carries the same figures.
    let doc = json_of(
        f.app
            .post(
                &format!("/api/lines/{}/reports", f.line),
                &f.manager.access,
                &json!({"date": yesterday}),
            )
            .await,
        201,
    )
    .await;
    assert_eq!(doc["kind"], "report");
    assert_eq!(doc["name"], format!("SMT-1-{yesterday}.csv"));
    let csv = f
        .app
        .get(
            &format!("/api/documents/{}/content", doc["id"].as_str().unwrap()),
            &f.leader.access,
        )
        .await;
    assert_eq!(csv.status(), 200);
    let text = csv.text().await.unwrap();
    assert!(text.starts_with("date,line,shift,"), "{text}");
    assert!(
        text.contains(&format!(
            "{yesterday},SMT-1,Day,2000,1800,200,660,60,600,90.9,83.3,90.0,68.2"
        )),
        "{text}"
    );

    for bad in [
        "from=2026-13-01",
        "group=month",
        "from=2020-01-01&to=2026-01-01",
    ] {
        let r = f
            .app
            .get(
                &format!("/api/kpi/lines/{}?{bad}", f.line),
                &f.manager.access,
            )
            .await;
        assert!(
            matches!(r.status().as_u16(), 400 | 422),
            "{bad}: {}",
            r.status()
        );
    }
    assert_problem(
        f.app
            .get("/api/kpi/lines/not-a-line", &f.manager.access)
            .await,
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn orders_are_at_risk_when_scheduled_past_due_or_overdue() {
    let f = Floor::new().await;
    let order = |status: &str| {
        let app = &f.app;
        let token = f.manager.access.clone();
        let url = format!("/api/orders?status={status}");
        async move {
            json_of(app.get(&url, &token).await, 200).await["items"]
                .as_array()
                .unwrap()
                .len()
        }
    };
    assert_eq!(order("new").await, 1);
    f.schedule(&f.line, &day(1), 500).await;
    assert_eq!(order("planned").await, 1);
    // Work scheduled after the due date puts the order at risk.
    f.schedule(&f.line, &day(9), 500).await;
    assert_eq!(order("at_risk").await, 1);
    let o = json_of(
        f.app
            .get(&format!("/api/orders/{}", f.order), &f.manager.access)
            .await,
        200,
    )
    .await;
    assert_eq!(o["progress"]["risk"], "scheduled after its due date");
    let summary = json_of(f.app.get("/api/kpi/summary", &f.manager.access).await, 200).await;
    assert_eq!(summary["orders_at_risk"][0]["id"], f.order.as_str());

    // Cancelling takes it and its work orders out of play.
    let cancelled = json_of(
        f.app
            .post(
                &format!("/api/orders/{}/cancel", f.order),
                &f.manager.access,
                &json!({}),
            )
            .await,
        200,
    )
    .await;
    assert_eq!(cancelled["status"], "cancelled");
    let wos = json_of(
        f.app
            .get(
                &format!("/api/work-orders?order_id={}&to={}", f.order, day(20)),
                &f.manager.access,
            )
            .await,
        200,
    )
    .await;
    assert!(wos
        .as_array()
        .unwrap()
        .iter()
        .all(|w| w["status"] == "cancelled"));
    assert_problem(
        f.app
            .post(
                &format!("/api/orders/{}/cancel", f.order),
                &f.manager.access,
                &json!({}),
            )
            .await,
        409,
        "order_cancelled",
    )
    .await;
    assert_problem(
        f.app.post("/api/work-orders", &f.manager.access, &json!({
            "order_id": f.order, "line_id": f.line, "work_date": day(1), "shift": "Day", "quantity": 5,
        })).await,
        409,
        "order_cancelled",
    )
    .await;
}

fn pdf() -> Vec<u8> {
    b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n".to_vec()
}

async fn upload(f: &Floor, query: &str, content_type: &str, bytes: Vec<u8>) -> reqwest::Response {
    f.app
        .client
        .post(f.app.url(&format!("/api/documents?{query}")))
        .bearer_auth(&f.manager.access)
        .header("content-type", content_type)
        .body(bytes)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn documents_are_checked_stored_with_a_checksum_and_shown_only_to_the_line_concerned() {
    let f = Floor::new().await;
    let wo = f.published_task(10).await;
    let doc = json_of(
        upload(&f, &format!("owner_type=work_order&owner_id={wo}&kind=instruction&name=..%2F..%2Fetc%2Fwork%20instruction.pdf"), "application/pdf", pdf()).await,
        201,
    )
    .await;
    assert_eq!(doc["name"], "work instruction.pdf");
    assert_eq!(doc["size"], pdf().len());
    let sha = ims::storage::sha256_hex(&pdf());
    assert_eq!(doc["sha256"], sha.as_str());
    assert!(doc.get("storage_key").is_none());
    let id = doc["id"].as_str().unwrap();

    // The line's leader reads it; the other line's leader cannot tell it exists.
    let got = f
        .app
        .get(&format!("/api/documents/{id}/content"), &f.leader.access)
        .await;
    assert_eq!(got.status(), 200);
    assert_eq!(got.headers()["content-type"], "application/pdf");
    assert!(got.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment;"));
    assert_eq!(got.headers()["x-content-type-options"], "nosniff");
    assert_eq!(got.bytes().await.unwrap().to_vec(), pdf());
    let listed = json_of(
        f.app
            .get(
                &format!("/api/documents?owner_type=work_order&owner_id={wo}"),
                &f.leader.access,
            )
            .await,
        200,
    )
    .await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    for path in [
        format!("/api/documents/{id}"),
        format!("/api/documents/{id}/content"),
        format!("/api/documents?owner_type=work_order&owner_id={wo}"),
    ] {
        assert_problem(
            f.app.get(&path, &f.other_leader.access).await,
            404,
            "not_found",
        )
        .await;
    }

    // Bad uploads.
    let png_as_pdf = upload(
        &f,
        &format!("owner_type=line&owner_id={}&name=a.pdf", f.line),
        "application/pdf",
        b"\x89PNG\r\n\x1a\n0000".to_vec(),
    )
    .await;
    assert_problem(png_as_pdf, 422, "content_mismatch").await;
    let exe = upload(
        &f,
        &format!("owner_type=line&owner_id={}&name=a.exe", f.line),
        "application/x-msdownload",
        b"MZ\x90\x00".to_vec(),
    )
    .await;
    assert_problem(exe, 422, "unsupported_type").await;
    let orphan = upload(
        &f,
        "owner_type=line&owner_id=nope&name=a.pdf",
        "application/pdf",
        pdf(),
    )
    .await;
    assert_problem(orphan, 422, "unknown_owner").await;
    let mut big = pdf();
    big.resize(21 * 1024 * 1024, b' ');
    let too_big = upload(
        &f,
        &format!("owner_type=line&owner_id={}&name=big.pdf", f.line),
        "application/pdf",
        big,
    )
    .await;
    assert_problem(too_big, 413, "payload_too_large").await;
    let leader_upload = f
        .app
        .client
        .post(f.app.url(&format!(
            "/api/documents?owner_type=line&owner_id={}&name=a.pdf",
            f.line
        )))
        .bearer_auth(&f.leader.access)
        .header("content-type", "application/pdf")
        .body(pdf())
        .send()
        .await
        .unwrap();
    assert_problem(leader_upload, 403, "forbidden").await;
    // Only the one good document was stored.
    let stored = std::fs::read_dir(f.app.db.dir.join("documents"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(stored, 1);

    // Bytes changed behind IMS's back are not served.
    let key: String = sqlx::query_scalar("SELECT storage_key FROM documents WHERE id = $1")
        .bind(id)
        .fetch_one(f.app.state.db.pool())
        .await
        .unwrap();
    // Downloads stream, so the check ends the transfer: the client never gets a complete file.
    let path = f.app.db.dir.join("documents").join(&key);
    let mut same_size = std::fs::read(&path).unwrap();
    *same_size.last_mut().unwrap() ^= 0x20;
    for bytes in [same_size, b"%PDF-tampered".to_vec()] {
        std::fs::write(&path, &bytes).unwrap();
        // The transfer fails: before the headers (nothing was sent yet) or within the body.
        let tampered = f
            .app
            .client
            .get(f.app.url(&format!("/api/documents/{id}/content")))
            .bearer_auth(&f.manager.access)
            .send()
            .await;
        if let Ok(response) = tampered {
            assert_eq!(response.status(), 200, "the headers went before the bytes");
            assert!(
                response.bytes().await.is_err(),
                "a corrupt document must not arrive whole"
            );
        }
    }

    let gone = f
        .app
        .client
        .delete(f.app.url(&format!("/api/documents/{id}")))
        .bearer_auth(&f.manager.access)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 204);
    assert_problem(
        f.app
            .get(&format!("/api/documents/{id}"), &f.manager.access)
            .await,
        404,
        "not_found",
    )
    .await;
    assert!(!f.app.db.dir.join("documents").join(&key).exists());
}

fn mails(app: &TestApp) -> Vec<String> {
    std::fs::read_dir(app.db.dir.join("mail"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn execution_events_raise_alerts_once_and_managers_are_emailed() {
    let f = Floor::new().await;
    let m = &f.manager.access;
    f.rule(json!({"kind": "scrap_rate", "threshold": 10})).await;
    f.rule(json!({"kind": "line_down", "threshold": 15, "line_id": f.line}))
        .await;
    let wo = f.published_task(500).await;
    // Publishing emailed the leader their task.
    let leader_mail = eventually(Duration::from_secs(10), || async {
        mails(&f.app)
            .iter()
            .any(|m| m.contains(&f.leader.email) && m.contains("Your production tasks"))
    })
    .await;
    assert!(leader_mail, "the leader was not emailed their tasks");

    json_of(f.act(&f.leader, &wo, "start", &json!({})).await, 200).await;
    json_of(
        f.act(
            &f.leader,
            &wo,
            "output",
            &json!({"good": 70, "scrap": 30, "scrap_reason": "TOMBSTONE"}),
        )
        .await,
        200,
    )
    .await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let stop = json!({"reason_code": "MACHINE_FAULT", "start": ims::clock::rfc3339(now - 1800), "end": ims::clock::rfc3339(now - 600)});
    json_of(f.act(&f.leader, &wo, "downtime", &stop).await, 200).await;

    let raised = eventually(Duration::from_secs(15), || async {
        json_of(f.app.get("/api/alerts", m).await, 200)
            .await
            .as_array()
            .unwrap()
            .len()
            == 2
    })
    .await;
    let alerts = json_of(f.app.get("/api/alerts", m).await, 200).await;
    assert!(raised, "{alerts}");
    let kinds: Vec<&str> = alerts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"scrap_rate") && kinds.contains(&"line_down"),
        "{alerts}"
    );
    let scrap = alerts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "scrap_rate")
        .unwrap();
    assert!(
        scrap["message"].as_str().unwrap().contains("30%"),
        "{scrap}"
    );
    assert_eq!(scrap["severity"], "warning");

    // The manager is emailed each alert.
    let emailed = eventually(Duration::from_secs(10), || async {
        mails(&f.app)
            .iter()
            .filter(|m| m.contains(&f.manager.email) && m.contains("IMS alert"))
            .count()
            == 2
    })
    .await;
    assert!(emailed, "managers were not emailed the alerts");

    // A redelivered event raises nothing new: the same output event, twice more, on the queue.
    let shift = if time::OffsetDateTime::now_utc().hour() < 12 {
        "Day"
    } else {
        "Night"
    };
    let event = json!({
        "kind": "work_order.output", "line_id": f.line, "order_id": f.order, "work_order_id": wo,
        "severity": "info", "at": now, "data": {"good": 70, "scrap": 30, "work_date": day(0), "shift": shift},
    });
    for _ in 0..2 {
        let attrs = ims::events::Attributes::default();
        f.app
            .state
            .queue
            .send(
                &uuid::Uuid::now_v7().to_string(),
                &event.to_string(),
                &attrs,
            )
            .await
            .unwrap();
    }
    f.app.state.events_wake.notify_one();
    let drained = eventually(Duration::from_secs(10), || async {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM queue_messages")
            .fetch_one(f.app.state.db.pool())
            .await
            .unwrap();
        n == 0
    })
    .await;
    assert!(drained, "the queue was not drained");
    assert_eq!(
        json_of(f.app.get("/api/alerts", m).await, 200)
            .await
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Acknowledging clears it from the open list.
    let id = scrap["id"].as_str().unwrap();
    let acked = json_of(
        f.app
            .post(&format!("/api/alerts/{id}/acknowledge"), m, &json!({}))
            .await,
        200,
    )
    .await;
    assert_eq!(acked["acknowledged_by"], f.manager.user_id.as_str());
    assert_eq!(
        json_of(f.app.get("/api/alerts?open=true", m).await, 200)
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn a_line_paused_too_long_raises_a_line_down_alert_from_the_sweep() {
    let f = Floor::new().await;
    f.rule(json!({"kind": "line_down", "threshold": 1})).await;
    let wo = f.published_task(50).await;
    json_of(f.act(&f.leader, &wo, "start", &json!({})).await, 200).await;
    json_of(
        f.act(
            &f.leader,
            &wo,
            "pause",
            &json!({"reason_code": "NO_OPERATOR"}),
        )
        .await,
        200,
    )
    .await;
    // Pretend the pause began 5 minutes ago, then let the sweep judge it.
    sqlx::query("UPDATE downtimes SET started_at = started_at - 300 WHERE ended_at IS NULL")
        .execute(f.app.state.db.pool())
        .await
        .unwrap();
    ims::production::alerts::sweep(&f.app.state).await.unwrap();
    ims::production::alerts::sweep(&f.app.state).await.unwrap();
    let alerts = json_of(f.app.get("/api/alerts", &f.manager.access).await, 200).await;
    assert_eq!(alerts.as_array().unwrap().len(), 1, "{alerts}");
    assert_eq!(alerts[0]["severity"], "critical");
    assert!(alerts[0]["message"]
        .as_str()
        .unwrap()
        .contains("NO_OPERATOR"));
    let summary = json_of(f.app.get("/api/kpi/summary", &f.manager.access).await, 200).await;
    let line = summary["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["line_id"] == f.line.as_str())
        .unwrap()
        .clone();
    assert_eq!(line["state"], "paused");
    assert_eq!(summary["open_alerts"], 1);
}

#[tokio::test]
async fn reasons_are_configurable_and_inactive_ones_refused() {
    let f = Floor::new().await;
    let reasons = json_of(
        f.app
            .get("/api/reasons?kind=downtime", &f.leader.access)
            .await,
        200,
    )
    .await;
    assert!(reasons
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["code"] == "CHANGEOVER"));
    let created = json_of(
        f.app
            .post(
                "/api/reasons",
                &f.manager.access,
                &json!({"kind": "downtime", "code": "stencil_clean", "label": "Stencil cleaning"}),
            )
            .await,
        201,
    )
    .await;
    assert_eq!(created["code"], "STENCIL_CLEAN");
    let wo = f.published_task(20).await;
    json_of(f.act(&f.leader, &wo, "start", &json!({})).await, 200).await;
    let id = created["id"].as_str().unwrap();
    json_of(
        f.app
            .patch(
                &format!("/api/reasons/{id}"),
                &f.manager.access,
                &json!({"active": false}),
            )
            .await,
        200,
    )
    .await;
    assert_problem(
        f.act(
            &f.leader,
            &wo,
            "pause",
            &json!({"reason_code": "STENCIL_CLEAN"}),
        )
        .await,
        422,
        "unknown_reason",
    )
    .await;
    assert_problem(
        f.app
            .post(
                "/api/reasons",
                &f.leader.access,
                &json!({"kind": "scrap", "code": "X", "label": "x"}),
            )
            .await,
        403,
        "forbidden",
    )
    .await;
}

#[tokio::test]
async fn a_line_runs_one_work_order_at_a_time_and_a_long_pause_alerts_when_it_ends() {
    let f = Floor::new().await;
    f.rule(json!({"kind": "line_down", "threshold": 3})).await;
    let first = f.schedule(&f.line, &day(0), 10).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let second = f.schedule(&f.line, &day(0), 10).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    f.publish(&day(0), &day(0)).await;
    json_of(f.act(&f.leader, &first, "start", &json!({})).await, 200).await;
    assert_problem(
        f.act(&f.leader, &second, "start", &json!({})).await,
        409,
        "line_busy",
    )
    .await;
    json_of(
        f.act(
            &f.leader,
            &first,
            "pause",
            &json!({"reason_code": "MATERIAL_SHORTAGE"}),
        )
        .await,
        200,
    )
    .await;
    // The stop began 5 minutes ago; running the other work order ends it, and the alert follows
    // from the event (the periodic sweep is 30 s away).
    sqlx::query("UPDATE downtimes SET started_at = started_at - 300 WHERE ended_at IS NULL")
        .execute(f.app.state.db.pool())
        .await
        .unwrap();
    json_of(f.act(&f.leader, &second, "start", &json!({})).await, 200).await;
    let open: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM downtimes WHERE ended_at IS NULL")
        .fetch_one(f.app.state.db.pool())
        .await
        .unwrap();
    assert_eq!(open, 0, "the line runs again, so it is not down");
    let raised = eventually(Duration::from_secs(10), || async {
        json_of(f.app.get("/api/alerts", &f.manager.access).await, 200)
            .await
            .as_array()
            .unwrap()
            .len()
            == 1
    })
    .await;
    assert!(raised, "no line_down alert after the stop ended");
    let alerts = json_of(f.app.get("/api/alerts", &f.manager.access).await, 200).await;
    assert!(
        alerts[0]["message"].as_str().unwrap().contains("5 min"),
        "{alerts}"
    );
}

#[tokio::test]
async fn planning_changes_take_effect_on_the_floor_only_when_published() {
    let f = Floor::new().await;
    let wo = f.published_task(40).await;
    let get = f
        .app
        .get(&format!("/api/work-orders/{wo}"), &f.manager.access)
        .await;
    let etag = get.headers()["etag"].to_str().unwrap().to_owned();
    // Moving a planned work order makes it a draft again until republished.
    let moved = f
        .app
        .client
        .patch(f.app.url(&format!("/api/work-orders/{wo}")))
        .bearer_auth(&f.manager.access)
        .header("If-Match", etag)
        .json(&json!({"sequence": 3}))
        .send()
        .await
        .unwrap();
    let moved = json_of(moved, 200).await;
    assert!(moved["published_at"].is_null());
    assert_problem(
        f.app
            .get(&format!("/api/work-orders/{wo}"), &f.leader.access)
            .await,
        404,
        "not_found",
    )
    .await;
    let again = f.publish(&day(0), &day(0)).await;
    assert_eq!(
        (
            again["published"].as_i64(),
            again["leaders_notified"].as_i64()
        ),
        (Some(1), Some(1))
    );
    json_of(
        f.app
            .get(&format!("/api/work-orders/{wo}"), &f.leader.access)
            .await,
        200,
    )
    .await;
    // Publishing again with nothing new emails no one.
    let idle = f.publish(&day(0), &day(0)).await;
    assert_eq!(
        (
            idle["published"].as_i64(),
            idle["leaders_notified"].as_i64()
        ),
        (Some(0), Some(0))
    );

    // A shift with open work cannot be removed from its line.
    let line = f
        .app
        .get(&format!("/api/lines/{}", f.line), &f.manager.access)
        .await;
    let version = line.headers()["etag"].to_str().unwrap().to_owned();
    let night_only = json!({"shifts": [{"name": "Night", "start": "12:00", "minutes": 720, "break_minutes": 60}]});
    let r = f
        .app
        .client
        .patch(f.app.url(&format!("/api/lines/{}", f.line)))
        .bearer_auth(&f.manager.access)
        .header("If-Match", version)
        .json(&night_only)
        .send()
        .await
        .unwrap();
    assert_problem(r, 409, "shift_in_use").await;

    // Cancelling the order cancels its work with a history entry each.
    json_of(f.act(&f.leader, &wo, "start", &json!({})).await, 200).await;
    assert_problem(
        f.app
            .post(
                &format!("/api/orders/{}/cancel", f.order),
                &f.manager.access,
                &json!({}),
            )
            .await,
        409,
        "work_in_progress",
    )
    .await;
    json_of(
        f.act(
            &f.leader,
            &wo,
            "pause",
            &json!({"reason_code": "QUALITY_HOLD"}),
        )
        .await,
        200,
    )
    .await;
    json_of(
        f.app
            .post(
                &format!("/api/orders/{}/cancel", f.order),
                &f.manager.access,
                &json!({}),
            )
            .await,
        200,
    )
    .await;
    let history = json_of(
        f.app
            .get(&format!("/api/work-orders/{wo}/history"), &f.manager.access)
            .await,
        200,
    )
    .await;
    let last = history.as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (
            last["kind"].as_str(),
            last["from_status"].as_str(),
            last["to_status"].as_str()
        ),
        (Some("cancelled"), Some("paused"), Some("cancelled"))
    );
    assert_eq!(last["actor_id"], f.manager.user_id.as_str());
    let open: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM downtimes WHERE ended_at IS NULL")
        .fetch_one(f.app.state.db.pool())
        .await
        .unwrap();
    assert_eq!(open, 0);
}
