//! Faults under load, with real parts: PostgreSQL stopped and started again while clients write
//! (a private cluster, so the shared test server is never touched), `ims serve` SIGKILLed while
//! leaders report output (each report is several rows plus an outbox event, in one transaction),
//! and the embedded SQLite database on a disk that fills up (a small tmpfs).
//!
//! Elsewhere: an SMTP server down and back (`mail.rs`), moto down and back (`aws_mail.rs`,
//! `aws_events.rs`), mail queued before a SIGKILL and sent after the restart (`mail.rs`), and a
//! database cut off by a proxy (`edge.rs`).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ims::auth::roles::Role;
use serde_json::json;
use sqlx::{Connection, Row};

use crate::helpers::*;
use crate::pg_cluster::PgCluster;
use crate::production::{day, json_of, Floor};
use crate::serve::{ims_on, Serve};

/// What a client saw for one request.
#[derive(Debug, Clone)]
struct Outcome {
    /// `None`: no response at all (connection refused or cut).
    status: Option<u16>,
    took: Duration,
    /// The created object's id, on a `201`.
    id: Option<String>,
}

/// Runs `clients` loops of `request(client_no, n)` until `stop` is set; collects every outcome.
async fn load<F, Fut>(clients: usize, stop: Arc<AtomicBool>, request: F) -> Vec<Outcome>
where
    F: Fn(usize, usize) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = Outcome> + Send,
{
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (stop, seen, request) = (stop.clone(), seen.clone(), request.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                let outcome = request(c, n).await;
                seen.lock().unwrap().push(outcome);
                n += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let out = seen.lock().unwrap().clone();
    out
}

async fn outcome_of(sent: Instant, response: reqwest::Result<reqwest::Response>) -> Outcome {
    match response {
        Ok(r) => {
            let status = r.status().as_u16();
            let body: serde_json::Value = r.json().await.unwrap_or_default();
            Outcome {
                status: Some(status),
                took: sent.elapsed(),
                id: body["id"].as_str().map(str::to_owned),
            }
        }
        Err(_) => Outcome {
            status: None,
            took: sent.elapsed(),
            id: None,
        },
    }
}

#[tokio::test]
async fn postgres_restarted_under_load_fails_fast_and_recovers_without_losing_writes() {
    if !is_postgres() {
        eprintln!("note: the PostgreSQL restart runs in the PostgreSQL pass only");
        return;
    }
    let password = "restart-db-pass";
    let pg = PgCluster::start(password);
    let url = pg.url(Some(password));
    let app = spawn_on(TestDb::at(&url), &[]).await;
    let manager = app.login_as(&[Role::Manager]).await;

    let stop = Arc::new(AtomicBool::new(false));
    let (client, base, token) = (app.client.clone(), app.base.clone(), manager.access.clone());
    let writers = tokio::spawn(load(4, stop.clone(), move |c, n| {
        let (client, base, token) = (client.clone(), base.clone(), token.clone());
        async move {
            let sent = Instant::now();
            let body = json!({
                "sku": format!("RST-{c}-{n}"), "name": format!("Restart board {c}/{n}"),
                "ideal_cycle_seconds": {"SMT": 12.0},
            });
            let r = client
                .post(format!("{base}/api/products"))
                .bearer_auth(&token)
                .json(&body)
                .send()
                .await;
            outcome_of(sent, r).await
        }
    }));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let down = tokio::task::spawn_blocking({
        let dir = pg.clone_handle();
        move || dir.stop_server()
    });
    down.await.unwrap();
    let stopped_at = Instant::now();
    // During the outage: readiness says so, quickly.
    let r = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let up = tokio::task::spawn_blocking({
        let dir = pg.clone_handle();
        move || dir.start_server()
    });
    up.await.unwrap();
    let restarted_at = Instant::now();
    let recovered = app.ready_within(Duration::from_secs(15)).await;
    assert!(recovered, "not ready 15 s after PostgreSQL came back");
    eprintln!(
        "outage {:?}; ready again {:?} after the restart",
        restarted_at - stopped_at,
        restarted_at.elapsed()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::SeqCst);
    let outcomes = writers.await.unwrap();

    let count = |s: u16| outcomes.iter().filter(|o| o.status == Some(s)).count();
    let unavailable = count(503);
    let created = count(201);
    eprintln!(
        "{} writes: {created} created, {unavailable} unavailable",
        outcomes.len()
    );
    let unexpected: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| !matches!(o.status, Some(201) | Some(503)))
        .collect();
    assert!(unexpected.is_empty(), "only 201 or 503: {unexpected:?}");
    assert!(unavailable > 0, "the outage was not seen by any request");
    // Fail fast: only requests already waiting when the database went away wait out the pool's
    // 3-second acquire timeout; once a request has found it unreachable, the rest are answered
    // at once until a probe reaches it again.
    let mut waits: Vec<Duration> = outcomes
        .iter()
        .filter(|o| o.status == Some(503))
        .map(|o| o.took)
        .collect();
    waits.sort();
    let slowest = waits[waits.len() - 1];
    let median = waits[waits.len() / 2];
    eprintln!("503 answers: median {median:?}, slowest {slowest:?}");
    assert!(slowest < Duration::from_secs(4), "a 503 took {slowest:?}");
    assert!(
        median < Duration::from_millis(100),
        "503s were not fast: median {median:?}"
    );
    assert!(
        unavailable >= 20,
        "too few requests saw the outage: {unavailable}"
    );
    // Writes resumed after the restart.
    let last = outcomes
        .iter()
        .rev()
        .take(8)
        .filter(|o| o.status == Some(201));
    assert!(last.count() > 0, "no write succeeded after the restart");

    // Every acknowledged write is there; no write is half there (one row per product, whole).
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    let rows = sqlx::query("SELECT id, sku, name FROM products")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    let stored: HashSet<String> = rows.iter().map(|r| r.get::<String, _>("id")).collect();
    for o in outcomes.iter().filter(|o| o.status == Some(201)) {
        assert!(stored.contains(o.id.as_ref().unwrap()), "lost write {o:?}");
    }
    for r in &rows {
        let sku: String = r.get("sku");
        let name: String = r.get("name");
        assert!(
            sku.starts_with("RST-") && name.starts_with("Restart board"),
            "{sku} {name}"
        );
    }
    conn.close().await.ok();
}

#[tokio::test]
async fn a_sigkill_while_leaders_report_leaves_whole_reports_and_pending_events_go_out() {
    let public = [("IMS_PUBLIC_URL", "http://ims.factory.example")];
    let f = Floor::on(spawn_app_with(&public).await).await;
    let wo = f.published_task(1_000_000).await;
    json_of(f.act(&f.leader, &wo, "start", &json!({})).await, 200).await;
    let serve = Serve::start(ims_on(&f.app.db, &public)).await;

    let stop = Arc::new(AtomicBool::new(false));
    let (client, base, token) = (
        serve.client.clone(),
        serve.base.clone(),
        f.leader.access.clone(),
    );
    let url = format!("{base}/api/work-orders/{wo}/output");
    let reporters = tokio::spawn(load(3, stop.clone(), move |_, _| {
        let (client, url, token) = (client.clone(), url.clone(), token.clone());
        async move {
            let sent = Instant::now();
            let r = client
                .post(url)
                .bearer_auth(&token)
                .json(&json!({"good": 1, "scrap": 0}))
                .send()
                .await;
            outcome_of(sent, r).await
        }
    }));
    tokio::time::sleep(Duration::from_millis(800)).await;
    serve.kill().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    let outcomes = reporters.await.unwrap();
    let accepted = outcomes.iter().filter(|o| o.status == Some(200)).count() as i64;
    let cut = outcomes.iter().filter(|o| o.status.is_none()).count() as i64;
    // Three clients on one work order: every report is counted or cut by the kill, none refused.
    let other: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| !matches!(o.status, Some(200) | None))
        .collect();
    assert!(other.is_empty(), "{other:?}");
    assert!(accepted > 0 && cut > 0, "accepted {accepted}, cut {cut}");

    // A new process on the same database and data directory.
    let again = Serve::start(ims_on(&f.app.db, &public)).await;
    let db = f.app.state.db.pool();
    let reports: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM output_reports WHERE work_order_id = $1")
            .bind(&wo)
            .fetch_one(db)
            .await
            .unwrap();
    let good_sum: i64 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(good), 0) AS BIGINT) FROM output_reports WHERE work_order_id = $1",
    )
    .bind(&wo)
    .fetch_one(db)
    .await
    .unwrap();
    let counted: i64 = sqlx::query_scalar("SELECT good_qty FROM work_orders WHERE id = $1")
        .bind(&wo)
        .fetch_one(db)
        .await
        .unwrap();
    let history: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM work_order_events WHERE work_order_id = $1 AND kind = 'output'",
    )
    .bind(&wo)
    .fetch_one(db)
    .await
    .unwrap();
    let events: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM outbox WHERE kind = 'event' AND template = 'work_order.output'",
    )
    .fetch_one(db)
    .await
    .unwrap();
    eprintln!("{accepted} reports acknowledged, {cut} cut by the kill, {reports} stored");
    // Every acknowledged report is stored; a cut one is stored whole or not at all.
    assert!(reports >= accepted && reports <= accepted + cut);
    assert_eq!(good_sum, reports);
    assert_eq!(
        counted, reports,
        "the work order's count matches its reports"
    );
    assert_eq!(history, reports, "one history entry per report");
    assert_eq!(events, reports, "one outbox event per report");
    // The events still in the outbox or the queue at the kill are relayed and consumed. What the
    // killed process had claimed stays leased for at most a lease (60 s), then anyone takes it;
    // the test lets that time pass by ending those leases, after checking they were bounded.
    let now = ims::clock::now();
    let leased: Vec<i64> = sqlx::query_scalar(
        "SELECT lease_until FROM outbox WHERE status = 'pending' AND lease_until > $1
         UNION ALL SELECT visible_at FROM queue_messages WHERE visible_at > $1",
    )
    .bind(now)
    .fetch_all(db)
    .await
    .unwrap();
    assert!(leased.iter().all(|&t| t <= now + 61), "{leased:?}");
    eprintln!(
        "{} messages were leased by the killed process",
        leased.len()
    );
    sqlx::query("UPDATE outbox SET lease_until = 0 WHERE status = 'pending' AND lease_until > $1")
        .bind(now)
        .execute(db)
        .await
        .unwrap();
    sqlx::query("UPDATE queue_messages SET visible_at = 0 WHERE visible_at > $1")
        .bind(now)
        .execute(db)
        .await
        .unwrap();
    let drained = eventually(Duration::from_secs(60), || async {
        let pending: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox WHERE kind = 'event' AND status <> 'sent'",
        )
        .fetch_one(db)
        .await
        .unwrap();
        let queued: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM queue_messages")
            .fetch_one(db)
            .await
            .unwrap();
        pending == 0 && queued == 0
    })
    .await;
    assert!(
        drained,
        "events left in the outbox or the queue after the restart"
    );
    let wo_now = json_of(
        again
            .client
            .get(format!("{}/api/work-orders/{wo}", again.base))
            .bearer_auth(&f.manager.access)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(wo_now["good_quantity"], reports, "{wo_now}");
    again.stop().await;
}

/// A graceful stop (SIGTERM, what ECS sends on a deploy) finishes the requests still running for
/// clients that have already gone: one report blocked on a lock, one waiting for the only pool
/// connection. Both are stored before the pool closes, and the process exits cleanly.
#[tokio::test]
async fn a_graceful_stop_finishes_requests_whose_client_went_away() {
    // Tokens issued in-process work on the child process: same keys, same public URL.
    let public = ("IMS_PUBLIC_URL", "http://ims.factory.example");
    let f = Floor::on(spawn_app_with(&[public]).await).await;
    // One work order running on each line; a leader of each.
    let b = f.schedule(&f.other_line, &day(0), 100).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let a = f.published_task(100).await;
    let leaders = [(&a, &f.leader), (&b, &f.other_leader)];
    for (wo, leader) in leaders {
        json_of(f.act(leader, wo, "start", &json!({})).await, 200).await;
    }
    let one_connection = [public, ("IMS_DATABASE_MAX_CONNECTIONS", "1")];
    let mut serve = Serve::start(ims_on(&f.app.db, &one_connection)).await;
    // The write lock (SQLite) or the row (PostgreSQL) that the report on `a` needs.
    let mut lock = f.app.state.db.begin_write().await.unwrap();
    sqlx::query("UPDATE work_orders SET updated_at = updated_at WHERE id = $1")
        .bind(&a)
        .execute(&mut *lock)
        .await
        .unwrap();
    let report_and_leave = |(wo, leader): (&String, &Session)| {
        serve
            .client
            .post(format!("{}/api/work-orders/{wo}/output", serve.base))
            .bearer_auth(&leader.access)
            .json(&json!({"good": 1, "scrap": 0}))
            .timeout(Duration::from_millis(200))
            .send()
    };
    // Requests the server is handling, this scrape included.
    let running_at_least = |n: i64| {
        let (client, base) = (serve.client.clone(), serve.base.clone());
        async move {
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                let text = client.get(format!("{base}/metrics")).send().await.unwrap();
                let text = text.text().await.unwrap();
                let running = text
                    .lines()
                    .find_map(|l| l.strip_prefix("ims_http_requests_running "))
                    .and_then(|v| v.trim().parse::<i64>().ok())
                    .expect("ims_http_requests_running in /metrics");
                if running >= n {
                    return;
                }
                assert!(Instant::now() < deadline, "{running} running, not {n}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    assert!(
        report_and_leave(leaders[0]).await.is_err(),
        "the client gave up"
    );
    running_at_least(2).await;
    assert!(
        report_and_leave(leaders[1]).await.is_err(),
        "the client gave up"
    );
    running_at_least(3).await;

    serve.terminate();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        serve.running(),
        "the stop waits for the reports\n{}",
        serve.log()
    );
    lock.commit().await.unwrap();
    let log = serve.exited().await;
    assert!(
        log.contains("waiting for requests still running running=2"),
        "{log}"
    );
    for wo in [&a, &b] {
        let (good, reports): (i64, i64) = sqlx::query_as(
            "SELECT good_qty, (SELECT COUNT(*) FROM output_reports WHERE work_order_id = w.id)
             FROM work_orders w WHERE id = $1",
        )
        .bind(wo)
        .fetch_one(f.app.state.db.pool())
        .await
        .unwrap();
        assert_eq!((good, reports), (1, 1), "{wo}\n{log}");
        // Logged like any request, although nobody was there for the answer.
        let finished = format!("path=/api/work-orders/{wo}/output}}: ims::http::middleware: request finished status=200");
        assert!(log.contains(&finished), "{finished}\n{log}");
    }
}

/// A tmpfs of `size` mounted on a new directory; unmounted (and removed) on drop.
struct SmallDisk {
    dir: PathBuf,
}

impl SmallDisk {
    fn mount(size: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("ims-full-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(&dir)
            .output()
            .expect("mount runs");
        assert!(
            out.status.success(),
            "mounting a {size} tmpfs needs root (CI runs as root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self { dir }
    }

    /// Writes a filler file until the disk refuses more; returns its path.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.dir.join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 4096];
        loop {
            match file.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}");
                    break;
                }
            }
        }
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazily: a connection the server is still closing must not keep the mount alive.
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.dir)
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn integrity(path: &Path) -> String {
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let result: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.ok();
    result
}

#[tokio::test]
async fn a_full_disk_in_embedded_mode_is_a_clear_error_and_corrupts_nothing() {
    if is_postgres() {
        eprintln!("note: the embedded (SQLite) disk-full test runs in the SQLite pass only");
        return;
    }
    let disk = SmallDisk::mount("4m");
    let data = disk.dir.join("ims-data");
    let db = TestDb::in_dir(&data);
    let app = spawn_on(db, &[]).await;
    let manager = app.login_as(&[Role::Manager]).await;
    let product = |n: usize| json!({"sku": format!("FULL-{n}"), "name": format!("Board {n}"), "ideal_cycle_seconds": {"SMT": 10.0}});
    let mut created = Vec::new();
    for n in 0..5 {
        let body = json_of(
            app.post("/api/products", &manager.access, &product(n))
                .await,
            201,
        )
        .await;
        created.push(body["id"].as_str().unwrap().to_owned());
    }

    let filler = disk.fill();
    // Writes now fail with a clear 507 problem, never a 500; nothing half-written stays behind.
    let mut refused = 0;
    for n in 5..80 {
        let r = app
            .post("/api/products", &manager.access, &product(n))
            .await;
        match r.status().as_u16() {
            201 => created.push(json_of(r, 201).await["id"].as_str().unwrap().to_owned()),
            507 => {
                assert_problem(r, 507, "storage_full").await;
                refused += 1;
                if refused == 5 {
                    break;
                }
            }
            other => panic!(
                "write on a full disk answered {other}: {}",
                r.text().await.unwrap()
            ),
        }
    }
    assert_eq!(refused, 5, "writes kept succeeding on a full disk");
    // Reads still work.
    let listed = json_of(app.get("/api/products", &manager.access).await, 200).await;
    assert!(listed.to_string().contains("FULL-0"));

    // Space comes back: writes work again without a restart, and the database is sound.
    std::fs::remove_file(filler).unwrap();
    let body = json_of(
        app.post("/api/products", &manager.access, &product(999))
            .await,
        201,
    )
    .await;
    created.push(body["id"].as_str().unwrap().to_owned());
    let listed = json_of(app.get("/api/products", &manager.access).await, 200).await;
    let text = listed.to_string();
    for id in &created {
        assert!(
            text.contains(id.as_str()),
            "acknowledged product {id} is missing"
        );
    }
    app.state.db.close().await;
    assert_eq!(integrity(&data.join("ims.db")).await, "ok");
    drop(app);
    drop(disk);
}
