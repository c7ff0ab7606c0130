//! `ims demo`: a living factory in an empty database, one user per role with passwords shown
//! once, and a refusal (exit 3) to load into a database that already has production data.

use serde_json::Value;

use crate::cli::ims_command;
use crate::helpers::*;
use crate::production::json_of;

#[tokio::test]
async fn the_demo_factory_is_alive_and_loads_only_once() {
    let db = TestDb::new().await;
    let demo = || {
        let mut cmd = ims_command();
        cmd.env("IMS_DATA_DIR", &db.dir)
            .env("IMS_DATABASE_URL", &db.url)
            .current_dir(&db.dir)
            .args(["demo", "--days", "3"]);
        cmd
    };
    let out = demo().output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let password_of = |role: &str| -> (String, String) {
        let line = stdout
            .lines()
            .find(|l| l.trim_start().starts_with(role))
            .unwrap_or_else(|| panic!("{role} in {stdout}"));
        let parts: Vec<&str> = line.split_whitespace().collect();
        (parts[1].to_owned(), parts[2].to_owned())
    };
    let (manager_email, manager_password) = password_of("MANAGER");
    let (leader_email, leader_password) = password_of("LINE_LEADER");
    assert_eq!(manager_email, "manager@demo.factory");
    assert!(manager_password.len() >= 20);

    // Loading again is refused with exit status 3 and writes nothing.
    let again = demo().output().await.unwrap();
    assert_eq!(
        again.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    let app = spawn_on(db.share(), &[]).await;
    let login = |email: String, password: String| {
        let app = &app;
        async move {
            let r = app.login(&email, &password).await;
            json_of(r, 200).await["access_token"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let manager = login(manager_email, manager_password).await;
    let leader = login(leader_email, leader_password).await;
    let summary = json_of(app.get("/api/kpi/summary", &manager).await, 200).await;
    assert_eq!(summary["lines"].as_array().unwrap().len(), 3);
    let states: Vec<&str> = summary["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["state"].as_str().unwrap())
        .collect();
    assert!(
        states.contains(&"running") && states.contains(&"paused"),
        "{states:?}"
    );
    assert!(!summary["orders_at_risk"].as_array().unwrap().is_empty());
    let tasks = json_of(app.get("/api/my/tasks", &leader).await, 200).await;
    assert!(!tasks.as_array().unwrap().is_empty());
    // History: three days of OEE with every factor.
    let line = summary["lines"][0]["line_id"].as_str().unwrap();
    let kpi: Value = json_of(
        app.get(&format!("/api/kpi/lines/{line}?group=day"), &manager)
            .await,
        200,
    )
    .await;
    let days = kpi["buckets"].as_array().unwrap();
    assert!(days.len() >= 3, "{kpi}");
    let oee = days[0]["oee"].as_f64().unwrap();
    assert!((0.3..1.0).contains(&oee), "{oee}");
    let pareto = json_of(app.get("/api/kpi/downtime-pareto", &manager).await, 200).await;
    assert!(!pareto.as_array().unwrap().is_empty());
}
