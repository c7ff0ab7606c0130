//! Test harness: every test gets its own IMS on port 0 with its own database — a fresh SQLite file,
//! or a fresh PostgreSQL database when `IMS_TEST_BACKEND=postgres` (created from `IMS_TEST_PG_URL`
//! and dropped afterwards). Helpers read like the user's story: `app.login_as(Role::Manager)`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use ims::app::AppState;
use ims::auth::roles::Role;
use ims::users::accounts::{self, Actor, NewAccount};
use ims::{App, Config};
use secrecy::SecretString;
use serde_json::{json, Value};
use sqlx::Connection;

/// A password that passes the policy for every generated test user.
pub const PASSWORD: &str = "Violet-Tractor-Lamp-2091!";

pub fn backend() -> String {
    std::env::var("IMS_TEST_BACKEND").unwrap_or_else(|_| "sqlite".into())
}

pub fn is_postgres() -> bool {
    backend() == "postgres"
}

pub fn pg_admin_url() -> String {
    std::env::var("IMS_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A fresh database for one test; dropped (PostgreSQL) when the guard goes.
pub struct TestDb {
    pub url: String,
    pub dir: PathBuf,
    pg_name: Option<String>,
    owner: bool,
}

impl TestDb {
    pub async fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("ims-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        if is_postgres() {
            let name = format!("ims_t_{}", uuid::Uuid::new_v4().simple());
            let mut conn = sqlx::PgConnection::connect(&pg_admin_url()).await.unwrap();
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await
                .unwrap();
            conn.close().await.ok();
            let mut url = url::Url::parse(&pg_admin_url()).unwrap();
            url.set_path(&name);
            Self {
                url: url.to_string(),
                dir,
                pg_name: Some(name),
                owner: true,
            }
        } else {
            Self {
                url: format!("sqlite://{}", dir.join("ims.db").display()),
                dir,
                pg_name: None,
                owner: true,
            }
        }
    }
}

impl TestDb {
    /// A database this test set up itself at `url`, with a fresh data directory (removed on drop).
    pub fn at(url: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("ims-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        Self {
            url: url.to_owned(),
            dir,
            pg_name: None,
            owner: true,
        }
    }

    /// The embedded defaults' layout: `dir/ims.db` as the SQLite database, `dir` as the data
    /// directory (created here, removed on drop).
    pub fn in_dir(dir: &std::path::Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        Self {
            url: format!("sqlite://{}", dir.join("ims.db").display()),
            dir: dir.to_owned(),
            pg_name: None,
            owner: true,
        }
    }

    /// The same database and data directory, for a second instance; cleaned up by the original.
    pub fn share(&self) -> Self {
        Self {
            url: self.url.clone(),
            dir: self.dir.clone(),
            pg_name: None,
            owner: false,
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if !self.owner {
            return;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some(name) = self.pg_name.take() {
            let admin = pg_admin_url();
            // Drop runs inside the test's runtime; use a separate thread with its own.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                        let _ =
                            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                                .execute(&mut conn)
                                .await;
                    }
                });
            })
            .join();
        }
    }
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub state: AppState,
    pub db: TestDb,
    counter: AtomicU32,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// A signed-in user.
#[derive(Debug, Clone)]
pub struct Session {
    pub user_id: String,
    pub email: String,
    pub access: String,
    pub refresh: String,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// Starts IMS with extra `IMS_*` settings on a fresh database.
pub async fn spawn_app_with(settings: &[(&str, &str)]) -> TestApp {
    let db = TestDb::new().await;
    spawn_on(db, settings).await
}

pub fn env_for(db: &TestDb, settings: &[(&str, &str)]) -> HashMap<String, String> {
    let mut env: HashMap<String, String> = HashMap::new();
    env.insert("IMS_DATA_DIR".into(), db.dir.display().to_string());
    env.insert("IMS_DATABASE_URL".into(), db.url.clone());
    env.insert("IMS_LISTEN".into(), "127.0.0.1:0".into());
    env.insert("IMS_DATABASE_MAX_CONNECTIONS".into(), "5".into());
    for (k, v) in settings {
        env.insert((*k).into(), (*v).into());
    }
    env
}

pub async fn spawn_on(db: TestDb, settings: &[(&str, &str)]) -> TestApp {
    let config = Config::load(&env_for(&db, settings))
        .await
        .expect("test configuration");
    let app = App::build(config).await.expect("app builds");
    let base = format!("http://{}", app.local_addr());
    let state = app.state().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    TestApp {
        base,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        state,
        db,
        counter: AtomicU32::new(0),
        _stop: stop,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Creates an active, verified user directly (as `ims users create` does).
    pub async fn create_user(&self, roles: &[Role]) -> (String, String) {
        let n = self.counter.fetch_add(1, Ordering::SeqCst);
        let email = format!("user{n}-{}@factory.example", uuid::Uuid::new_v4().simple());
        self.create_user_with(&email, &format!("Test User {n}"), roles, true)
            .await
    }

    pub async fn create_user_with(
        &self,
        email: &str,
        name: &str,
        roles: &[Role],
        verified: bool,
    ) -> (String, String) {
        let user = accounts::create(
            &self.state.db,
            &self.state.hasher,
            None,
            NewAccount {
                email: email.into(),
                name: name.into(),
                roles: roles.to_vec(),
                password: Some(SecretString::from(PASSWORD)),
                email_verified: verified,
            },
            Actor { id: None, ip: None },
        )
        .await
        .expect("user created");
        (user.id, user.email)
    }

    pub async fn login(&self, email: &str, password: &str) -> reqwest::Response {
        self.client
            .post(self.url("/auth/login"))
            .json(&json!({ "email": email, "password": password }))
            .send()
            .await
            .unwrap()
    }

    pub async fn login_ok(&self, email: &str) -> Session {
        let response = self.login(email, PASSWORD).await;
        assert_eq!(response.status(), 200, "login of {email}");
        let body: Value = response.json().await.unwrap();
        Session {
            user_id: body["user"]["id"].as_str().unwrap().into(),
            email: email.into(),
            access: body["access_token"].as_str().unwrap().into(),
            refresh: body["refresh_token"].as_str().unwrap().into(),
        }
    }

    /// A new user with these roles, signed in.
    pub async fn login_as(&self, roles: &[Role]) -> Session {
        let (_, email) = self.create_user(roles).await;
        self.login_ok(&email).await
    }

    pub async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn patch(&self, path: &str, token: &str, body: &Value) -> reqwest::Response {
        self.client
            .patch(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// `GET path` without a token; the body as JSON.
    /// Polls `/readyz` until it answers 200; false when `within` passes first.
    pub async fn ready_within(&self, within: std::time::Duration) -> bool {
        eventually(within, || async {
            self.client
                .get(self.url("/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        })
        .await
    }

    pub async fn public_json(&self, path: &str) -> Value {
        self.client
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn refresh(&self, refresh_token: &str) -> reqwest::Response {
        self.client
            .post(self.url("/auth/refresh"))
            .json(&json!({ "refresh_token": refresh_token }))
            .send()
            .await
            .unwrap()
    }

    /// Audit events (newest first) of one type.
    pub async fn audit(&self, admin_token: &str, kind: &str) -> Vec<Value> {
        let response = self
            .get(
                &format!("/api/admin/audit?type={kind}&limit=200"),
                admin_token,
            )
            .await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        body["items"].as_array().unwrap().clone()
    }
}

/// Asserts a problem+json response with this status and code; returns the body.
pub async fn assert_problem(response: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status().as_u16(), status, "status");
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json",
        "content type"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status);
    assert!(body["type"]
        .as_str()
        .unwrap()
        .starts_with("urn:ims:problem:"));
    assert!(body["title"].is_string() && body["detail"].is_string());
    body
}

/// Polls until `check` is true or the deadline passes.
pub async fn eventually<F, Fut>(timeout: std::time::Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    false
}

/// Every maximal run of exactly six ASCII digits (a one-time code looks like this).
pub fn six_digit_runs(text: &str) -> Vec<String> {
    let mut runs = Vec::new();
    let mut current = String::new();
    for c in text.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_digit() {
            current.push(c);
        } else {
            if current.len() == 6 {
                runs.push(current.clone());
            }
            current.clear();
        }
    }
    runs
}
