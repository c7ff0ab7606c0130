//! Scale-out, as deployed on ECS behind the ALB: two `ims serve` processes on one PostgreSQL
//! database and one data directory (the same signing keys and OTP pepper, as the secret store gives
//! every task), behind a round-robin reverse proxy on loopback. A token issued by one instance works
//! on the other; a refresh token reused on one kills the family on both; login failures count
//! across both; a disabled user is refused by both within 5 seconds; outbox messages (mail) and
//! queue jobs (execution events → alerts → alert mail) are handled exactly once.
//!
//! The floor (lines, leaders, an order, a published task) is set up through the harness's own
//! in-process instance on the same database, which keeps running: its workers are a third
//! consumer of the same outbox and queue, which only makes "exactly once" harder.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ims::auth::roles::Role;
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::helpers::*;
use crate::production::{json_of, Floor};
use crate::serve::{ims_on, Serve};

/// A TCP load balancer: each new connection goes to the next backend in turn. The test's client
/// keeps no idle connections, so consecutive requests alternate between the instances.
struct RoundRobin {
    addr: SocketAddr,
    served: Arc<Vec<AtomicUsize>>,
    accept: JoinHandle<()>,
}

impl RoundRobin {
    async fn start(backends: Vec<SocketAddr>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let served: Arc<Vec<AtomicUsize>> =
            Arc::new(backends.iter().map(|_| AtomicUsize::new(0)).collect());
        let counts = served.clone();
        let accept = tokio::spawn(async move {
            let mut next = 0usize;
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                let i = next % backends.len();
                next += 1;
                counts[i].fetch_add(1, Ordering::SeqCst);
                let target = backends[i];
                tokio::spawn(async move {
                    if let Ok(mut upstream) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut upstream).await;
                    }
                });
            }
        });
        Self {
            addr,
            served,
            accept,
        }
    }

    fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn served(&self) -> Vec<usize> {
        self.served
            .iter()
            .map(|c| c.load(Ordering::SeqCst))
            .collect()
    }
}

impl Drop for RoundRobin {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

fn addr_of(serve: &Serve) -> SocketAddr {
    serve
        .base
        .trim_start_matches("http://")
        .parse()
        .expect("instance address")
}

async fn login(
    client: &reqwest::Client,
    base: &str,
    email: &str,
    password: &str,
) -> reqwest::Response {
    client
        .post(format!("{base}/auth/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
}

async fn tokens(response: reqwest::Response) -> (String, String) {
    let body = json_of(response, 200).await;
    (
        body["access_token"].as_str().unwrap().to_owned(),
        body["refresh_token"].as_str().unwrap().to_owned(),
    )
}

async fn refresh(client: &reqwest::Client, base: &str, token: &str) -> reqwest::Response {
    client
        .post(format!("{base}/auth/refresh"))
        .json(&json!({"refresh_token": token}))
        .send()
        .await
        .unwrap()
}

async fn me(client: &reqwest::Client, base: &str, access: &str) -> u16 {
    client
        .get(format!("{base}/auth/me"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// `.eml` files in the shared data directory's outbox that contain every one of `needles`.
fn eml_count(dir: &std::path::Path, needles: &[&str]) -> usize {
    std::fs::read_dir(dir.join("mail"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                .filter(|m| needles.iter().all(|n| m.contains(n)))
                .count()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn two_instances_behind_a_proxy_act_as_one_service() {
    if !is_postgres() {
        eprintln!("note: two instances on one database need PostgreSQL; skipped on SQLite");
        return;
    }
    let settings = [
        ("IMS_PUBLIC_URL", "http://ims.factory.example"),
        ("IMS_LOGIN_MAX_FAILURES", "4"),
        ("IMS_DATABASE_MAX_CONNECTIONS", "5"),
    ];
    let f = Floor::on(spawn_app_with(&settings).await).await;
    let a = Serve::start(ims_on(&f.app.db, &settings)).await;
    let b = Serve::start(ims_on(&f.app.db, &settings)).await;
    let proxy = RoundRobin::start(vec![addr_of(&a), addr_of(&b)]).await;
    let via = proxy.base();
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();

    // 1. A token issued by one instance works on the other, and through the proxy.
    let (_, email) = f.app.create_user(&[Role::Manager]).await;
    let (access, _) = tokens(login(&client, &a.base, &email, PASSWORD).await).await;
    assert_eq!(me(&client, &b.base, &access).await, 200);
    for _ in 0..6 {
        assert_eq!(me(&client, &via, &access).await, 200);
    }

    // 2. A rotated refresh token reused on B kills the family that A rotated, on both.
    let (first_access, first_refresh) = tokens(login(&client, &via, &email, PASSWORD).await).await;
    let (second_access, second_refresh) =
        tokens(refresh(&client, &a.base, &first_refresh).await).await;
    assert_eq!(me(&client, &b.base, &second_access).await, 200);
    assert_problem(
        refresh(&client, &b.base, &first_refresh).await,
        401,
        "invalid_refresh_token",
    )
    .await;
    assert_problem(
        refresh(&client, &a.base, &second_refresh).await,
        401,
        "invalid_refresh_token",
    )
    .await;
    // B refuses the family's access tokens at once; A within its revocation poll (5 s at most).
    for base in [&b.base, &a.base] {
        let refused = eventually(Duration::from_secs(5), || async {
            me(&client, base, &second_access).await == 401
                && me(&client, base, &first_access).await == 401
        })
        .await;
        assert!(
            refused,
            "{base} still accepts the revoked family's access tokens"
        );
    }
    // The first session (issued by A) is untouched.
    assert_eq!(me(&client, &b.base, &access).await, 200);

    // 3. Login failures count across instances: 2 on A and 2 on B lock the account on both.
    let (_, target) = f.app.create_user(&[Role::Manager]).await;
    for base in [&a.base, &b.base, &a.base, &b.base] {
        let r = login(&client, base, &target, "Wrong-Password-1234!").await;
        assert_eq!(r.status(), 401, "{base}");
    }
    for base in [&a.base, &b.base] {
        assert_problem(
            login(&client, base, &target, PASSWORD).await,
            429,
            "too_many_requests",
        )
        .await;
    }

    // 4. A disable through A is refused by B within 5 seconds.
    let (admin_access, _) = {
        let (_, admin_email) = f.app.create_user(&[Role::Admin]).await;
        tokens(login(&client, &via, &admin_email, PASSWORD).await).await
    };
    let (worker_id, worker) = f.app.create_user(&[Role::Manager]).await;
    let (worker_access, _) = tokens(login(&client, &via, &worker, PASSWORD).await).await;
    assert_eq!(me(&client, &b.base, &worker_access).await, 200);
    let disabled_at = Instant::now();
    let r = client
        .patch(format!("{}/api/admin/users/{worker_id}", a.base))
        .bearer_auth(&admin_access)
        .json(&json!({"disabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let refused = eventually(Duration::from_secs(5), || async {
        me(&client, &b.base, &worker_access).await == 401
    })
    .await;
    assert!(refused, "B still accepts a disabled user's token after 5 s");
    eprintln!("a disable on A reached B in {:?}", disabled_at.elapsed());

    // 5. Queue jobs and outbox messages exactly once: 8 stops, each long enough for the line_down
    //    rule, reported through the proxy (both instances), become 8 alerts and 8 alert mails.
    f.rule(json!({"kind": "line_down", "threshold": 15, "line_id": f.line}))
        .await;
    let wo = f.published_task(400).await;
    let leader = &f.leader.access;
    let act = |action: &'static str, body: Value| {
        let client = client.clone();
        let url = format!("{via}/api/work-orders/{wo}/{action}");
        let leader = leader.clone();
        async move {
            client
                .post(url)
                .bearer_auth(leader)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    // The leader's task list: the instance that took the action shows it at once (its task-list
    // cache starts a new generation); the other within the cache's second.
    let status_on = |base: String| {
        let client = client.clone();
        let leader = leader.clone();
        let wo = wo.clone();
        async move {
            let tasks = json_of(
                client
                    .get(format!("{base}/api/my/tasks"))
                    .bearer_auth(leader)
                    .send()
                    .await
                    .unwrap(),
                200,
            )
            .await;
            let task = tasks
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["id"] == wo.as_str())
                .cloned();
            task.map(|t| t["status"].as_str().unwrap().to_owned())
        }
    };
    for base in [&a.base, &b.base] {
        assert_eq!(status_on(base.clone()).await.as_deref(), Some("planned"));
    }
    json_of(
        client
            .post(format!("{}/api/work-orders/{wo}/start", a.base))
            .bearer_auth(leader)
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(
        status_on(a.base.clone()).await.as_deref(),
        Some("in_progress")
    );
    let seen = eventually(Duration::from_secs(2), || async {
        status_on(b.base.clone()).await.as_deref() == Some("in_progress")
    })
    .await;
    assert!(seen, "B still lists the task as planned after 2 s");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let stops = 8;
    for i in 0..stops {
        let start = now - 600 - (i + 1) * 1500;
        let stop = json!({
            "reason_code": "MACHINE_FAULT",
            "start": ims::clock::rfc3339(start),
            "end": ims::clock::rfc3339(start + 1200),
        });
        json_of(act("downtime", stop).await, 200).await;
    }
    let manager = &f.manager.access;
    let alerts = || async {
        json_of(f.app.get("/api/alerts", manager).await, 200)
            .await
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["kind"] == "line_down")
            .count()
    };
    let raised = eventually(Duration::from_secs(20), || async {
        alerts().await == stops as usize
    })
    .await;
    assert!(
        raised,
        "{} line_down alerts, expected {stops}",
        alerts().await
    );
    // Every manager is mailed each alert; count the ones to the floor's manager.
    let alert_mail = ["IMS alert", f.manager.email.as_str()];
    let mailed = eventually(Duration::from_secs(20), || async {
        eml_count(&f.app.db.dir, &alert_mail) >= stops as usize
    })
    .await;
    assert!(
        mailed,
        "alert mails: {}",
        eml_count(&f.app.db.dir, &alert_mail)
    );
    // Nothing more arrives later: no second delivery of an event or a mail.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(alerts().await, stops as usize);
    assert_eq!(eml_count(&f.app.db.dir, &alert_mail), stops as usize);
    let db = f.app.state.db.pool();
    let (queued, dead): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), COALESCE(SUM(CASE WHEN dead = 0 THEN 0 ELSE 1 END), 0) FROM queue_messages",
    )
    .fetch_one(db)
    .await
    .unwrap();
    assert_eq!((queued, dead), (0, 0), "queue drained, nothing parked");

    let served = proxy.served();
    assert!(
        served.iter().all(|&n| n >= 5),
        "the proxy spread the requests over both instances: {served:?}"
    );
    eprintln!("connections per instance through the proxy: {served:?}");
    a.stop().await;
    b.stop().await;
}
