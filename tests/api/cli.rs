//! The `ims` binary, black-box: `users create`, `migrate`, `check-config`, `keys generate` and
//! `serve` (embedded defaults, generated key files, graceful SIGTERM), plus the secret-leak test:
//! a server full of canary secrets is driven over HTTP and its logs, error bodies and audit trail
//! must never show a secret, password or token.
//!
//! Every child starts from a clean `IMS_*` environment (the config refuses unknown `IMS_*`
//! variables, and the test runner exports `IMS_TEST_*`), see [`ims_command`].

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ims::config::DatabaseUrl;
use ims::db::Db;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

use crate::helpers::{is_postgres, TestDb};

/// How long a debug build may take to start (migrations on a busy 2-core machine included).
const STARTUP: Duration = Duration::from_secs(60);
/// How long a one-shot command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);
/// A strong password for CLI-created users.
const STRONG: &str = "Quartz-Heron-Lantern-5817!";

fn canary(label: &str) -> String {
    format!("canary-{label}-{}", uuid::Uuid::new_v4().simple())
}

fn temp_dir(label: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("ims-cli-{label}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The `ims` binary with no inherited `IMS_*` variable, `RUST_LOG=info`, no colours, all three
/// standard streams piped, killed if the test drops it.
pub(crate) fn ims_command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ims"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("IMS_") {
            cmd.env_remove(&key);
        }
    }
    cmd.env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// [`ims_command`] on this test database, its own data directory and port 0.
fn ims_on(db: &TestDb) -> Command {
    let mut cmd = ims_command();
    cmd.env("IMS_DATA_DIR", &db.dir)
        .env("IMS_DATABASE_URL", &db.url)
        .env("IMS_LISTEN", "127.0.0.1:0")
        .current_dir(&db.dir);
    cmd
}

/// Runs a one-shot command to completion, feeding `stdin` (write errors are ignored: the command
/// may exit before reading, e.g. on a usage error).
pub(crate) async fn run(mut cmd: Command, stdin: Option<&str>) -> Output {
    let mut child = cmd.spawn().expect("ims starts");
    let mut pipe = child.stdin.take().expect("stdin piped");
    if let Some(text) = stdin {
        let _ = pipe.write_all(text.as_bytes()).await;
    }
    drop(pipe);
    tokio::time::timeout(COMMAND_TIMEOUT, child.wait_with_output())
        .await
        .expect("the command finishes in time")
        .expect("the command's output is readable")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `ims users create … --password-stdin`, the password given on stdin as `stdin`.
async fn users_create(
    mut cmd: Command,
    email: &str,
    name: &str,
    roles: &[&str],
    stdin: &str,
) -> Output {
    cmd.args(["users", "create", "--email", email, "--name", name]);
    for role in roles {
        cmd.args(["--role", role]);
    }
    cmd.arg("--password-stdin");
    run(cmd, Some(stdin)).await
}

/// Runs `ims keys generate` and stores the document in `dir`; returns the file and the base64
/// private key it holds.
async fn generated_keys_file(dir: &Path) -> (PathBuf, String) {
    let mut cmd = ims_command();
    cmd.current_dir(dir).args(["keys", "generate"]);
    let out = run(cmd, None).await;
    assert!(out.status.success(), "keys generate: {}", text(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("keys generate prints JSON");
    let keys = doc["keys"].as_array().expect("a keys array");
    assert_eq!(keys.len(), 1, "{doc}");
    assert_eq!(keys[0]["alg"], "EdDSA");
    let private = keys[0]["private_key"].as_str().unwrap().to_owned();
    assert!(private.len() >= 40, "a real PKCS#8 key");
    let path = dir.join("configured-signing-keys.json");
    std::fs::write(&path, &out.stdout).unwrap();
    (path, private)
}

/// Opens the test database directly (migrated by the command under test).
async fn open(db: &TestDb) -> Db {
    Db::connect(&DatabaseUrl::new(db.url.clone()), 1)
        .await
        .expect("test database opens")
}

async fn count(db: &Db, table: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(db.pool())
        .await
        .unwrap()
}

/// Removes ANSI escape sequences (`ESC [ … letter`).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The address of the `ims listening addr=…` log line, in text or JSON format.
pub(crate) fn listening_addr(line: &str) -> Option<String> {
    if let Ok(v) = serde_json::from_str::<Value>(line) {
        if v["fields"]["message"] == "ims listening" {
            return v["fields"]["addr"].as_str().map(str::to_owned);
        }
        return None;
    }
    let line = strip_ansi(line);
    if !line.contains("ims listening") {
        return None;
    }
    let rest = &line[line.find("addr=")? + "addr=".len()..];
    Some(rest.split_whitespace().next()?.trim_matches('"').to_owned())
}

/// Appends every line of `stream` to `sink`, forwarding each to `lines` if given.
pub(crate) fn collect(
    stream: impl AsyncRead + Unpin + Send + 'static,
    sink: Arc<Mutex<String>>,
    lines: Option<tokio::sync::mpsc::UnboundedSender<String>>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut reader = BufReader::new(stream).lines();
        while let Ok(Some(line)) = reader.next_line().await {
            {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
            if let Some(tx) = &lines {
                let _ = tx.send(line);
            }
        }
    })
}

/// A running `ims serve`.
struct Server {
    child: Child,
    pid: u32,
    base: String,
    /// From spawning the process to `/healthz` answering 200.
    ready_after: Duration,
    client: reqwest::Client,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

/// What a stopped server left behind.
struct Stopped {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Server {
    /// Spawns `cmd serve`, finds the port in its log and waits for `/healthz`.
    async fn start(mut cmd: Command) -> Server {
        cmd.arg("serve").stdin(Stdio::null());
        let started = Instant::now();
        let mut child = cmd.spawn().expect("ims serve starts");
        let pid = child.id().expect("a pid");
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let readers = vec![
            collect(child.stdout.take().unwrap(), stdout.clone(), Some(tx)),
            collect(child.stderr.take().unwrap(), stderr.clone(), None),
        ];
        let found = tokio::time::timeout(STARTUP, async {
            while let Some(line) = rx.recv().await {
                if let Some(addr) = listening_addr(&line) {
                    return Some(addr);
                }
            }
            None
        })
        .await;
        let Ok(Some(addr)) = found else {
            let status = child.try_wait();
            panic!(
                "no `ims listening` line (process: {status:?})\nstdout:\n{}\nstderr:\n{}",
                stdout.lock().unwrap(),
                stderr.lock().unwrap()
            );
        };
        let base = format!("http://{addr}");
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        crate::serve::wait_healthy(&client, &base, started + STARTUP, || {
            format!("stderr:\n{}", stderr.lock().unwrap())
        })
        .await;
        let ready_after = started.elapsed();
        Server {
            child,
            pid,
            base,
            ready_after,
            client,
            stdout,
            stderr,
            readers,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends SIGTERM and waits (at most 10 s) for the process to exit; returns its output.
    async fn stop(mut self) -> Stopped {
        let kill = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status()
            .expect("kill runs");
        assert!(kill.success(), "kill -TERM {}", self.pid);
        let status = match tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await {
            Ok(status) => status.unwrap(),
            Err(_) => panic!(
                "ims serve did not exit within 10 s of SIGTERM\nstdout:\n{}\nstderr:\n{}",
                self.stdout.lock().unwrap(),
                self.stderr.lock().unwrap()
            ),
        };
        for reader in self.readers.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(5), reader).await;
        }
        let stdout = self.stdout.lock().unwrap().clone();
        let stderr = self.stderr.lock().unwrap().clone();
        Stopped {
            status,
            stdout,
            stderr,
        }
    }

    async fn login(&self, email: &str, password: &str) -> reqwest::Response {
        self.client
            .post(self.url("/auth/login"))
            .json(&json!({ "email": email, "password": password }))
            .send()
            .await
            .unwrap()
    }
}

fn assert_uuid_line(stdout: &[u8]) -> String {
    let out = text(stdout);
    let id = out
        .strip_suffix('\n')
        .unwrap_or_else(|| panic!("stdout ends with a newline: {out:?}"));
    assert!(!id.contains('\n'), "exactly one line: {out:?}");
    let parsed = uuid::Uuid::parse_str(id).unwrap_or_else(|_| panic!("a UUID: {out:?}"));
    assert_eq!(parsed.hyphenated().to_string(), id, "canonical UUID text");
    id.to_owned()
}

fn sorted_roles(v: &Value) -> Vec<String> {
    let mut roles: Vec<String> = v
        .as_array()
        .unwrap_or_else(|| panic!("roles array: {v}"))
        .iter()
        .map(|r| r.as_str().unwrap().to_owned())
        .collect();
    roles.sort();
    roles
}

#[tokio::test]
async fn users_create_makes_a_verified_user_who_can_sign_in() {
    let db = TestDb::new().await;
    let email = format!("ops.lead-{}@factory.example", uuid::Uuid::new_v4().simple());
    let out = users_create(
        ims_on(&db),
        &email,
        "Ops Lead",
        &["ADMIN", "MANAGER"],
        &format!("{STRONG}\n"),
    )
    .await;
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let id = assert_uuid_line(&out.stdout);

    // No trailing newline on stdin: the password is taken as it is.
    let other = format!("line-{}@factory.example", uuid::Uuid::new_v4().simple());
    let exact = "Birch-Compass-Ember-4420?";
    let out = users_create(ims_on(&db), &other, "Line Lead", &["LINE_LEADER"], exact).await;
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let other_id = assert_uuid_line(&out.stdout);
    assert_ne!(id, other_id);

    let server = Server::start(ims_on(&db)).await;
    let r = server.login(&email, STRONG).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["user"]["id"], id.as_str());
    assert_eq!(body["user"]["email"], email.as_str());
    assert_eq!(body["user"]["name"], "Ops Lead");
    assert_eq!(body["user"]["email_verified"], true);
    assert_eq!(sorted_roles(&body["user"]["roles"]), ["ADMIN", "MANAGER"]);
    let access = body["access_token"].as_str().unwrap();

    let me = server
        .client
        .get(server.url("/auth/me"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["id"], id.as_str());
    assert_eq!(me["email"], email.as_str());
    assert_eq!(me["email_verified"], true);
    assert_eq!(sorted_roles(&me["roles"]), ["ADMIN", "MANAGER"]);

    // The stripped newline is not part of the password.
    let r = server.login(&email, &format!("{STRONG}\n")).await;
    assert_eq!(r.status(), 401);
    let r = server.login(&other, exact).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["user"]["id"], other_id.as_str());
    assert_eq!(sorted_roles(&body["user"]["roles"]), ["LINE_LEADER"]);

    let stopped = server.stop().await;
    assert!(stopped.status.success(), "{:?}", stopped.status);
}

/// A `users create` that must be refused, and the words its message must contain.
struct Refusal<'a> {
    case: &'a str,
    email: String,
    name: &'a str,
    roles: Vec<&'a str>,
    /// Empty: a password containing the email's local part (built in the test).
    password: &'a str,
    words: Vec<&'a str>,
}

#[tokio::test]
async fn users_create_refuses_bad_input_and_writes_nothing() {
    let db = TestDb::new().await;
    let email = format!(
        "m.okonkwo-{}@factory.example",
        uuid::Uuid::new_v4().simple()
    );
    let name = "Marguerite Okonkwo";
    let out = users_create(
        ims_on(&db),
        &email,
        name,
        &["MANAGER"],
        &format!("{STRONG}\n"),
    )
    .await;
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let id = assert_uuid_line(&out.stdout);

    let conn = open(&db).await;
    let audit_before = count(&conn, "audit_events").await;
    assert_eq!(count(&conn, "users").await, 1);

    let fresh = format!("new-{}@factory.example", uuid::Uuid::new_v4().simple());
    let cases = vec![
        Refusal {
            case: "common password",
            email: fresh.clone(),
            name: "Dana Whitfield",
            roles: vec!["MANAGER"],
            password: "password1234",
            words: vec!["password", "common"],
        },
        Refusal {
            case: "password contains the name",
            email: fresh.clone(),
            name,
            roles: vec!["MANAGER"],
            password: "Okonkwo-Violet-Tractor-77!",
            words: vec!["password", "name"],
        },
        Refusal {
            case: "password contains the email",
            email: fresh.clone(),
            name: "Dana Whitfield",
            roles: vec!["MANAGER"],
            // The local part of `fresh` (starts with "new-") inside a strong-looking string.
            password: "",
            words: vec!["password", "email"],
        },
        Refusal {
            case: "password too short",
            email: fresh.clone(),
            name: "Dana Whitfield",
            roles: vec!["MANAGER"],
            password: "Zq7!kP2#wX",
            words: vec!["password", "12"],
        },
        Refusal {
            case: "bad role",
            email: fresh.clone(),
            name: "Dana Whitfield",
            roles: vec!["BOSS"],
            password: STRONG,
            words: vec!["BOSS", "role"],
        },
        Refusal {
            case: "invalid email",
            email: "not-an-email".into(),
            name: "Dana Whitfield",
            roles: vec!["MANAGER"],
            password: STRONG,
            words: vec!["email"],
        },
        Refusal {
            case: "duplicate email",
            email: email.clone(),
            name: "Someone Else",
            roles: vec!["LINE_LEADER"],
            password: "Maple-Orbit-Signal-3306#",
            words: vec!["already exists"],
        },
        Refusal {
            case: "duplicate email in other case",
            email: email.to_uppercase(),
            name: "Someone Else",
            roles: vec!["LINE_LEADER"],
            password: "Maple-Orbit-Signal-3306#",
            words: vec!["already exists"],
        },
    ];
    let local_part = fresh.split('@').next().unwrap().to_owned();
    let with_email = format!("Xy9!{local_part}-Kite");
    for Refusal {
        case,
        email,
        name,
        roles,
        password,
        words,
    } in &cases
    {
        let password: &str = if password.is_empty() {
            with_email.as_str()
        } else {
            password
        };
        let out = users_create(ims_on(&db), email, name, roles, &format!("{password}\n")).await;
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{case}: must fail; stderr: {stderr}");
        assert!(
            out.stdout.is_empty(),
            "{case}: no id printed: {:?}",
            text(&out.stdout)
        );
        for word in words {
            assert!(
                stderr.to_lowercase().contains(&word.to_lowercase()),
                "{case}: stderr should say {word:?}: {stderr}"
            );
        }
        assert!(
            !stderr.contains(password),
            "{case}: stderr echoes the password: {stderr}"
        );
    }

    // Without --password-stdin there is no way to give a password: refused.
    let mut cmd = ims_on(&db);
    cmd.args([
        "users",
        "create",
        "--email",
        fresh.as_str(),
        "--name",
        "Dana Whitfield",
        "--role",
        "MANAGER",
    ]);
    let out = run(cmd, Some(&format!("{STRONG}\n"))).await;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("password-stdin"),
        "{}",
        text(&out.stderr)
    );

    let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM users")
        .fetch_all(conn.pool())
        .await
        .unwrap();
    assert_eq!(ids, [id], "only the first user exists");
    assert_eq!(
        count(&conn, "audit_events").await,
        audit_before,
        "failed creates leave no audit event"
    );
    conn.close().await;
}

#[tokio::test]
async fn migrate_is_idempotent() {
    let db = TestDb::new().await;
    for round in 1..=2 {
        let mut cmd = ims_on(&db);
        cmd.arg("migrate");
        let out = run(cmd, None).await;
        assert!(
            out.status.success(),
            "migrate round {round}: {}",
            text(&out.stderr)
        );
        if round == 2 {
            let stderr = text(&out.stderr);
            assert!(
                !stderr.contains("migrations applied") || stderr.contains("migrations applied: 0"),
                "nothing left to apply the second time: {stderr}"
            );
        }
    }
    let conn = open(&db).await;
    assert_eq!(
        count(&conn, "users").await,
        0,
        "the schema exists and is empty"
    );
    conn.close().await;
}

#[tokio::test]
async fn check_config_prints_the_effective_configuration() {
    let dir = temp_dir("check-defaults");
    let mut cmd = ims_command();
    cmd.current_dir(&dir).arg("check-config");
    let out = run(cmd, None).await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    for expected in [
        "IMS_LISTEN=127.0.0.1:8080",
        "IMS_DATA_DIR=./ims-data",
        "IMS_DATABASE_URL=sqlite://./ims-data/ims.db",
        "IMS_MAIL_TRANSPORT=file",
        "JWT_SIGNING_KEYS=(unset)",
        "OTP_PEPPER=(unset)",
    ] {
        assert!(lines.contains(&expected), "{expected:?} in\n{stdout}");
    }
    assert!(
        lines.iter().all(|l| l.contains('=')),
        "NAME=value lines only:\n{stdout}"
    );
    assert!(
        !dir.join("ims-data").exists(),
        "check-config only reads; it creates no data directory"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn check_config_redacts_every_secret() {
    let dir = temp_dir("check-secrets");
    let (keys_file, private_key) = generated_keys_file(&dir).await;
    let pepper = canary("pepper");
    let smtp = canary("smtp");
    let ai = canary("ai");
    let db_password = canary("dbpw");
    let mut cmd = ims_command();
    cmd.current_dir(&dir)
        .env("IMS_OTP_PEPPER", &pepper)
        .env("IMS_SMTP_PASSWORD", &smtp)
        .env("IMS_SMTP_URL", "smtp://mailer@127.0.0.1:2525")
        .env("IMS_MAIL_TRANSPORT", "smtp")
        .env("IMS_AI_API_KEY", &ai)
        .env("IMS_DATABASE_URL", "postgres://ims@db.internal:5432/ims")
        .env("IMS_DATABASE_PASSWORD", &db_password)
        .env("IMS_JWT_SIGNING_KEYS_FILE", &keys_file)
        .arg("check-config");
    let out = run(cmd, None).await;
    let stdout = text(&out.stdout);
    let all = format!("{stdout}{}", text(&out.stderr));
    assert!(out.status.success(), "{all}");
    for (label, secret) in [
        ("pepper", &pepper),
        ("SMTP password", &smtp),
        ("AI key", &ai),
        ("database password", &db_password),
        ("private key", &private_key),
    ] {
        assert!(
            !all.contains(secret.as_str()),
            "check-config shows the {label}:\n{all}"
        );
    }
    for name in [
        "JWT_SIGNING_KEYS",
        "OTP_PEPPER",
        "SMTP_PASSWORD",
        "DATABASE_PASSWORD",
        "AI_API_KEY",
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(&format!("{name}=[redacted]"))),
            "{name} is shown redacted:\n{stdout}"
        );
    }
    let url_line = stdout
        .lines()
        .find(|l| l.starts_with("IMS_DATABASE_URL="))
        .expect("the database URL is shown");
    assert!(url_line.contains("db.internal"), "{url_line}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A configuration `check-config` must refuse: the words its message must contain and the
/// values it must not show.
struct BadConfig<'a> {
    case: &'a str,
    env: Vec<(&'a str, &'a str)>,
    words: Vec<&'a str>,
    hidden: Vec<&'a str>,
}

#[tokio::test]
async fn check_config_refuses_bad_configuration_clearly() {
    let dir = temp_dir("check-bad");
    let pepper_file = dir.join("pepper");
    std::fs::write(&pepper_file, canary("pepper-file")).unwrap();
    let pepper = canary("pepper");
    let bad_keys = canary("keys");
    // Valid JSON, but the "private key" is not a key; the base64 must not be echoed either.
    let fake_key = "Y2FuYXJ5LWZha2UtcHJpdmF0ZS1rZXktOTk4ODc3NjY1NQ==";
    let fake_doc = format!(
        r#"{{"keys":[{{"kid":"k1","alg":"EdDSA","created_at":1,"private_key":"{fake_key}"}}]}}"#
    );
    let pepper_file_text = pepper_file.display().to_string();
    let bad = |case, env, words, hidden| BadConfig {
        case,
        env,
        words,
        hidden,
    };
    let cases = vec![
        bad(
            "bad listen address",
            vec![("IMS_LISTEN", "nonsense")],
            vec!["IMS_LISTEN"],
            vec![],
        ),
        bad(
            "secret set twice",
            vec![
                ("IMS_OTP_PEPPER", pepper.as_str()),
                ("IMS_OTP_PEPPER_FILE", pepper_file_text.as_str()),
            ],
            vec!["OTP_PEPPER"],
            vec![pepper.as_str()],
        ),
        bad(
            "unknown variable",
            vec![("IMS_FOO", "1")],
            vec!["IMS_FOO"],
            vec![],
        ),
        bad(
            "keys not JSON",
            vec![("IMS_JWT_SIGNING_KEYS", bad_keys.as_str())],
            vec!["JWT_SIGNING_KEYS"],
            vec![bad_keys.as_str()],
        ),
        bad(
            "keys with a bad private key",
            vec![("IMS_JWT_SIGNING_KEYS", fake_doc.as_str())],
            vec!["JWT_SIGNING_KEYS"],
            vec![fake_key],
        ),
        bad(
            "missing secret file",
            vec![("IMS_AI_API_KEY_FILE", "/nonexistent/ims-ai-key")],
            vec!["AI_API_KEY"],
            vec![],
        ),
        bad(
            "identity provider without its client",
            vec![(
                "IMS_OIDC_ISSUER",
                "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_x",
            )],
            vec!["IMS_OIDC_ISSUER", "IMS_OIDC_CLIENT_ID"],
            vec![],
        ),
        bad(
            "factory offset",
            vec![("IMS_FACTORY_UTC_OFFSET", "Asia/Ho_Chi_Minh")],
            vec!["IMS_FACTORY_UTC_OFFSET"],
            vec![],
        ),
        bad(
            "queue URL without account and name",
            vec![("IMS_QUEUE_URL", "sqs://queue")],
            vec!["IMS_QUEUE_URL"],
            vec![],
        ),
    ];
    for BadConfig {
        case,
        env,
        words,
        hidden,
    } in &cases
    {
        let mut cmd = ims_command();
        cmd.current_dir(&dir).arg("check-config");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = run(cmd, None).await;
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(!out.status.success(), "{case}: must fail:\n{all}");
        for word in words {
            assert!(
                text(&out.stderr).contains(word),
                "{case}: stderr names {word}:\n{all}"
            );
        }
        for value in hidden {
            assert!(!all.contains(value), "{case}: the value is echoed:\n{all}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(unix)]
#[tokio::test]
async fn serve_runs_on_embedded_defaults_and_stops_on_sigterm() {
    use std::os::unix::fs::PermissionsExt;

    let dir = temp_dir("embedded");
    let embedded = |dir: &Path| {
        let mut cmd = ims_command();
        cmd.current_dir(dir).env("IMS_LISTEN", "127.0.0.1:0");
        cmd
    };
    let server = Server::start(embedded(&dir)).await;
    println!(
        "ims serve (embedded defaults): /healthz answered 200 after {:?}",
        server.ready_after
    );
    assert!(
        server.ready_after < Duration::from_secs(5),
        "ready after {:?}",
        server.ready_after
    );

    let data = dir.join("ims-data");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data) & 0o077, 0, "ims-data is owner-only");
    for file in ["jwt-signing-keys.json", "otp-pepper"] {
        let path = data.join(file);
        assert!(path.is_file(), "{} exists", path.display());
        assert_eq!(mode(&path), 0o600, "{file} is 0600");
    }
    assert!(
        data.join("ims.db").is_file(),
        "SQLite database under ims-data"
    );
    let keys_before = std::fs::read_to_string(data.join("jwt-signing-keys.json")).unwrap();
    let pepper_before = std::fs::read_to_string(data.join("otp-pepper")).unwrap();
    assert!(!keys_before.trim().is_empty() && !pepper_before.trim().is_empty());
    let jwks = |server: &Server| {
        let request = server
            .client
            .get(server.url("/.well-known/jwks.json"))
            .send();
        async move {
            let response = request.await.unwrap();
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.unwrap()
        }
    };
    let jwks_before = jwks(&server).await;
    assert!(!jwks_before["keys"].as_array().unwrap().is_empty());

    let stopped = server.stop().await;
    assert!(
        stopped.status.success(),
        "exit status {:?} after SIGTERM\n{}",
        stopped.status,
        stopped.stderr
    );

    // A second start reuses the generated key material.
    let server = Server::start(embedded(&dir)).await;
    assert_eq!(jwks(&server).await, jwks_before, "same signing keys");
    let stopped = server.stop().await;
    assert!(stopped.status.success(), "{:?}", stopped.status);
    assert_eq!(
        std::fs::read_to_string(data.join("jwt-signing-keys.json")).unwrap(),
        keys_before
    );
    assert_eq!(
        std::fs::read_to_string(data.join("otp-pepper")).unwrap(),
        pepper_before
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// One HTTP exchange of the leak test.
struct Exchange {
    what: &'static str,
    status: u16,
    request_id: Option<String>,
    body: String,
}

async fn exchange(
    log: &mut Vec<Exchange>,
    what: &'static str,
    request: reqwest::RequestBuilder,
) -> (u16, Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let request_id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response.text().await.unwrap();
    let value = serde_json::from_str(&body).unwrap_or(Value::Null);
    log.push(Exchange {
        what,
        status,
        request_id,
        body,
    });
    (status, value)
}

/// Whether `v` holds, at any depth, a string-valued key named `key`.
fn has_key(v: &Value, key: &str) -> bool {
    match v {
        Value::Object(map) => map
            .iter()
            .any(|(k, v)| (k == key && v.is_string()) || has_key(v, key)),
        Value::Array(items) => items.iter().any(|v| has_key(v, key)),
        _ => false,
    }
}

fn assert_hidden(place: &str, haystack: &str, secrets: &[(String, String)]) {
    for (label, secret) in secrets {
        if let Some(at) = haystack.find(secret.as_str()) {
            let line_start = haystack[..at].rfind('\n').map_or(0, |i| i + 1);
            let line_end = haystack[at..].find('\n').map_or(haystack.len(), |i| at + i);
            panic!(
                "{place} contains the {label}:\n{}",
                &haystack[line_start..line_end]
            );
        }
    }
}

#[tokio::test]
async fn no_secret_password_or_token_reaches_logs_bodies_or_audit() {
    let db = TestDb::new().await;
    let (keys_file, private_key) = generated_keys_file(&db.dir).await;
    let pepper = canary("pepper");
    let smtp = canary("smtp");
    let ai = canary("ai");
    let db_password = canary("dbpw");
    let use_db_password = is_postgres() && url::Url::parse(&db.url).unwrap().password().is_none();
    let configure = |cmd: &mut Command| {
        cmd.env("RUST_LOG", "debug")
            .env("IMS_LOG_FORMAT", "json")
            .env("IMS_OTP_PEPPER", &pepper)
            .env("IMS_SMTP_PASSWORD", &smtp)
            .env("IMS_AI_API_KEY", &ai)
            .env("IMS_JWT_SIGNING_KEYS_FILE", &keys_file);
        if use_db_password {
            // Trust authentication ignores it; it must still never be shown.
            cmd.env("IMS_DATABASE_PASSWORD", &db_password);
        }
    };

    // Bootstrap an admin with a canary password.
    let admin_email = format!("admin-{}@factory.example", uuid::Uuid::new_v4().simple());
    let admin_password = format!("Cx!{}", canary("bootstrap"));
    let mut cmd = ims_on(&db);
    configure(&mut cmd);
    let out = users_create(
        cmd,
        &admin_email,
        "Leak Test Admin",
        &["ADMIN"],
        &format!("{admin_password}\n"),
    )
    .await;
    let cli_logs = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{cli_logs}");

    let mut cmd = ims_on(&db);
    configure(&mut cmd);
    let server = Server::start(cmd).await;
    let client = server.client.clone();
    let mut log: Vec<Exchange> = Vec::new();

    let wrong_password = format!("Wx!{}", canary("wrongpw"));
    let malformed = canary("malformed");
    let email_canary = format!("{}@factory.example", canary("email"));
    let weak_password = format!("w{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let created_password = format!("Sx!{}", canary("createdpw"));
    let fake_refresh = format!("imsr_{}", canary("refresh"));
    let fake_bearer = canary("bearer");
    let mut tokens: Vec<String> = Vec::new();

    let login = |email: &str, password: &str| {
        client
            .post(server.url("/auth/login"))
            .json(&json!({ "email": email, "password": password }))
    };
    let (status, body) = exchange(&mut log, "login", login(&admin_email, &admin_password)).await;
    assert_eq!(status, 200, "{body}");
    let mut access = body["access_token"].as_str().unwrap().to_owned();
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    tokens.extend([access.clone(), refresh.clone()]);

    let (status, _) = exchange(
        &mut log,
        "wrong password",
        login(&admin_email, &wrong_password),
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = exchange(
        &mut log,
        "unknown email",
        login("nobody-at-all@factory.example", &admin_password),
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = exchange(
        &mut log,
        "malformed JSON",
        client
            .post(server.url("/auth/login"))
            .header("content-type", "application/json")
            .body(format!(
                r#"{{"email": "{admin_email}", "password": "{malformed}""#
            )),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = exchange(
        &mut log,
        "wrong type",
        client
            .post(server.url("/auth/login"))
            .json(&json!({ "email": email_canary, "password": 5 })),
    )
    .await;
    assert_eq!(status, 400, "a malformed body is 400");
    let (status, _) = exchange(
        &mut log,
        "unknown field",
        client.post(server.url("/auth/login")).json(
            &json!({ "email": admin_email, "password": admin_password, "remember": malformed }),
        ),
    )
    .await;
    assert_eq!(status, 400);

    let create = |password: &str| {
        client
            .post(server.url("/api/admin/users"))
            .bearer_auth(&access)
            .json(&json!({
                "email": format!("hire-{}@factory.example", uuid::Uuid::new_v4().simple()),
                "name": "New Hire",
                "roles": ["LINE_LEADER"],
                "password": password,
            }))
    };
    let (status, body) = exchange(&mut log, "weak password", create(&weak_password)).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["code"], "weak_password");
    let (status, body) = exchange(&mut log, "create user", create(&created_password)).await;
    assert_eq!(status, 201, "{body}");

    let refresh_with = |token: &str| {
        client
            .post(server.url("/auth/refresh"))
            .json(&json!({ "refresh_token": token }))
    };
    let (status, body) = exchange(&mut log, "refresh", refresh_with(&refresh)).await;
    assert_eq!(status, 200, "{body}");
    access = body["access_token"].as_str().unwrap().to_owned();
    tokens.extend([
        access.clone(),
        body["refresh_token"].as_str().unwrap().to_owned(),
    ]);
    let (status, _) = exchange(&mut log, "made-up refresh", refresh_with(&fake_refresh)).await;
    assert_eq!(status, 401);
    let (status, _) = exchange(
        &mut log,
        "made-up bearer",
        client.get(server.url("/auth/me")).bearer_auth(&fake_bearer),
    )
    .await;
    assert_eq!(status, 401);

    let (status, audit) = exchange(
        &mut log,
        "audit",
        client
            .get(server.url("/api/admin/audit?limit=200"))
            .bearer_auth(&access),
    )
    .await;
    assert_eq!(status, 200, "{audit}");
    let audit_items = audit["items"].as_array().unwrap();
    let types: Vec<&str> = audit_items
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    for expected in ["config_loaded", "user_created", "login_ok", "login_failed"] {
        assert!(types.contains(&expected), "{expected} in {types:?}");
    }
    let audit_text = audit.to_string();

    let login_request_id = log[0]
        .request_id
        .clone()
        .expect("responses carry x-request-id");
    let stopped = server.stop().await;
    assert!(stopped.status.success(), "{:?}", stopped.status);

    // What must never be shown anywhere.
    let mut never: Vec<(String, String)> = vec![
        ("OTP pepper".into(), pepper.clone()),
        ("SMTP password".into(), smtp.clone()),
        ("AI API key".into(), ai.clone()),
        ("database password".into(), db_password.clone()),
        ("private signing key".into(), private_key.clone()),
        ("admin password".into(), admin_password.clone()),
        ("wrong password".into(), wrong_password.clone()),
        ("malformed-body canary".into(), malformed.clone()),
        (
            "email canary of a malformed body".into(),
            email_canary.clone(),
        ),
        ("weak password".into(), weak_password.clone()),
        ("new user's password".into(), created_password.clone()),
        ("made-up refresh token".into(), fake_refresh.clone()),
        ("made-up bearer token".into(), fake_bearer.clone()),
    ];
    let mut token_secrets: Vec<(String, String)> = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        token_secrets.push((format!("issued token #{i}"), token.clone()));
        // A JWT's signature, or a refresh token without its prefix, is just as telling.
        if let Some(signature) = token.rsplit('.').next().filter(|_| token.contains('.')) {
            token_secrets.push((format!("signature of token #{i}"), signature.to_owned()));
        }
        if let Some(raw) = token.strip_prefix("imsr_") {
            token_secrets.push((format!("random part of token #{i}"), raw.to_owned()));
        }
    }

    for exchange in &log {
        let place = format!("the {} response body ({})", exchange.what, exchange.status);
        assert_hidden(&place, &exchange.body, &never);
        if exchange.status >= 400 {
            assert_hidden(&place, &exchange.body, &token_secrets);
        }
    }
    never.extend(token_secrets);
    assert_hidden("the audit log", &audit_text, &never);
    assert_hidden("the users create output", &cli_logs, &never);
    assert_hidden("the server's stdout", &stopped.stdout, &never);
    assert_hidden("the server's stderr", &stopped.stderr, &never);

    // Logs are JSON lines and carry request ids.
    let lines: Vec<Value> = stopped
        .stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str::<Value>(l)
                .unwrap_or_else(|_| panic!("a log line that is not JSON: {l}"))
        })
        .collect();
    assert!(lines.len() > log.len(), "debug logs were written");
    for line in &lines {
        assert!(line.is_object() && line["level"].is_string(), "{line}");
    }
    let with_request_id = lines.iter().filter(|l| has_key(l, "request_id")).count();
    assert!(
        with_request_id >= log.len(),
        "every request logs with its request_id ({with_request_id} lines)"
    );
    assert!(
        stopped.stdout.contains(&login_request_id),
        "the login's x-request-id {login_request_id} is in the logs"
    );
}
