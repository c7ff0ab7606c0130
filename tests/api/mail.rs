//! Mail delivery end to end through a real SMTP server: Python's `aiosmtpd`, started by each test as
//! a child process that stores every message it accepts in a Maildir (`scripts/test.sh` installs it).
//! Covered: the password-reset journey over SMTP; an SMTP outage healed by the retry backoff; a
//! SIGKILLed `ims serve` whose queued mail survives the restart; two `ims serve` instances on one
//! PostgreSQL database sending each message exactly once; the `file` transport's non-disclosure and
//! whole files; and the admin view and retry of mail that failed for good.
//!
//! Mails are read back by a small MIME reader (multipart, quoted-printable, base64); a code mail's
//! code is the only six-digit number in each of its parts.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine;
use ims::auth::password::Hasher;
use ims::auth::roles::Role;
use ims::config::DatabaseUrl;
use ims::db::Db;
use ims::users::accounts::{self, Actor, NewAccount};
use secrecy::SecretString;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{
    eventually, is_postgres, six_digit_runs, spawn_app, spawn_app_with, TestDb, PASSWORD,
};
use crate::serve::{ims_on, Serve};

/// The password users choose in a reset.
const NEW_PASSWORD: &str = "Saffron-Glacier-Anvil-7364?";

// --- the SMTP server -------------------------------------------------------------------------

/// A port that was free a moment ago.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn smtp_url(port: u16) -> String {
    format!("smtp://127.0.0.1:{port}")
}

/// `python3 -m aiosmtpd` on 127.0.0.1:`port`, storing messages in a Maildir. Killed on drop.
struct SmtpSink {
    child: std::process::Child,
    port: u16,
    root: PathBuf,
    maildir: PathBuf,
}

impl SmtpSink {
    /// Starts the server and waits until it greets on its port.
    async fn start(port: u16) -> SmtpSink {
        Self::spawn(port, "aiosmtpd.handlers.Mailbox", None).await
    }

    /// Like [`SmtpSink::start`], but recipients whose address starts with `bounce` are refused
    /// with `550` at `RCPT TO`, as a real server refuses an unknown mailbox.
    async fn start_refusing_bounces(port: u16) -> SmtpSink {
        Self::spawn(port, "ims_test_smtp.RefuseBounces", Some(REFUSING_HANDLER)).await
    }

    async fn spawn(port: u16, handler: &str, module: Option<&str>) -> SmtpSink {
        let root = std::env::temp_dir().join(format!("ims-smtp-{}", uuid::Uuid::new_v4().simple()));
        let maildir = root.join("maildir");
        for sub in ["new", "cur", "tmp"] {
            std::fs::create_dir_all(maildir.join(sub)).unwrap();
        }
        if let Some(source) = module {
            std::fs::write(root.join("ims_test_smtp.py"), source).unwrap();
        }
        let log = std::fs::File::create(root.join("aiosmtpd.log")).unwrap();
        let child = std::process::Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", handler])
            .arg(&maildir)
            .env("PYTHONPATH", &root)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("python3 starts (is Python 3 installed?)");
        let mut sink = SmtpSink {
            child,
            port,
            root,
            maildir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = sink.child.try_wait().unwrap() {
                panic!(
                    "aiosmtpd exited ({status}) before accepting connections; is it installed \
                     (`python3 -m pip install aiosmtpd`, or run scripts/test.sh)?\n{}",
                    sink.log()
                );
            }
            if greets(port).await {
                return sink;
            }
            assert!(
                Instant::now() < deadline,
                "aiosmtpd did not greet on port {port} within 20 s\n{}",
                sink.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn url(&self) -> String {
        smtp_url(self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.root.join("aiosmtpd.log")).unwrap_or_default()
    }

    /// Every message stored so far (complete files only: Maildir writes to tmp/ and renames).
    fn messages(&self) -> Vec<Mail> {
        let mut mails = Vec::new();
        for sub in ["new", "cur"] {
            let Ok(entries) = std::fs::read_dir(self.maildir.join(sub)) else {
                continue;
            };
            for entry in entries {
                let path = entry.unwrap().path();
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                if name.starts_with('.') {
                    continue;
                }
                mails.push(Mail::parse(&name, &std::fs::read(&path).unwrap()));
            }
        }
        mails.sort_by(|a, b| a.file.cmp(&b.file));
        mails
    }

    /// Waits until at least `n` messages are stored; returns all of them.
    async fn wait_for(&self, n: usize, within: Duration) -> Vec<Mail> {
        let deadline = Instant::now() + within;
        loop {
            let mails = self.messages();
            if mails.len() >= n {
                return mails;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} mails arrived within {within:?}\n{}",
                mails.len(),
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// An aiosmtpd handler that stores mail like `Mailbox` but refuses `bounce*` recipients.
const REFUSING_HANDLER: &str = r#"
from aiosmtpd.handlers import Mailbox


class RefuseBounces(Mailbox):
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower().startswith("bounce"):
            return "550 5.1.1 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"
"#;

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// True when an SMTP server (aiosmtpd, not some other listener) greets on `port`.
async fn greets(port: u16) -> bool {
    let Ok(Ok(mut stream)) = tokio::time::timeout(
        Duration::from_secs(2),
        tokio::net::TcpStream::connect(("127.0.0.1", port)),
    )
    .await
    else {
        return false;
    };
    let mut banner = [0u8; 256];
    let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut banner)).await
    else {
        return false;
    };
    let banner = String::from_utf8_lossy(&banner[..n]);
    let _ = stream.write_all(b"QUIT\r\n").await;
    banner.starts_with("220") && banner.contains("Python SMTP")
}

// --- reading mail ----------------------------------------------------------------------------

/// One MIME leaf: its content type and its decoded body.
#[derive(Debug)]
struct Part {
    content_type: String,
    body: String,
}

/// A stored message, parsed.
#[derive(Debug)]
pub(crate) struct Mail {
    file: String,
    headers: Vec<(String, String)>,
    parts: Vec<Part>,
}

impl Mail {
    pub(crate) fn parse(file: &str, raw: &[u8]) -> Mail {
        let text = String::from_utf8_lossy(raw).replace("\r\n", "\n");
        let (headers, body) = split_entity(&text);
        let mut parts = Vec::new();
        collect_parts(&headers, body, &mut parts);
        Mail {
            file: file.to_owned(),
            headers,
            parts,
        }
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    fn headers_named(&self, name: &str) -> usize {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .count()
    }

    fn message_id(&self) -> String {
        self.header("Message-ID")
            .unwrap_or_else(|| panic!("a Message-ID: {:?}", self.headers))
            .trim()
            .to_owned()
    }

    pub(crate) fn subject(&self) -> &str {
        self.header("Subject").unwrap_or("").trim()
    }

    /// The envelope recipient aiosmtpd recorded.
    fn rcpt_to(&self) -> &str {
        self.header("X-RcptTo").unwrap_or("").trim()
    }

    /// The decoded body of the first part of this type.
    fn part(&self, content_type: &str) -> &str {
        &self
            .parts
            .iter()
            .find(|p| p.content_type.eq_ignore_ascii_case(content_type))
            .unwrap_or_else(|| panic!("a {content_type} part in {}", self.file))
            .body
    }

    /// The code: the only six-digit number in the text part and in the HTML part.
    pub(crate) fn code(&self) -> String {
        let text = six_digit_runs(self.part("text/plain"));
        let html = six_digit_runs(self.part("text/html"));
        assert_eq!(text.len(), 1, "one six-digit number in the text: {text:?}");
        assert_eq!(html, text, "the HTML part shows the same code");
        text[0].clone()
    }

    /// Every decoded part, for "contains no code" checks.
    fn all_text(&self) -> String {
        self.parts.iter().map(|p| p.body.as_str()).collect()
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Splits an entity (with `\n` line ends) into unfolded headers and its body.
fn split_entity(text: &str) -> (Vec<(String, String)>, &str) {
    let (head, body) = match text.find("\n\n") {
        Some(i) => (&text[..i], &text[i + 2..]),
        None => (text, ""),
    };
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = headers.last_mut() {
                value.push_str(line);
            }
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    (headers, body)
}

/// A parameter of a header value such as `multipart/alternative; boundary="x"`.
fn param(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

fn media_type(headers: &[(String, String)]) -> String {
    header(headers, "Content-Type")
        .unwrap_or("text/plain")
        .split(';')
        .next()
        .unwrap()
        .trim()
        .to_ascii_lowercase()
}

/// Collects the decoded leaves of an entity, descending into multiparts.
fn collect_parts(headers: &[(String, String)], body: &str, out: &mut Vec<Part>) {
    let content_type = media_type(headers);
    if content_type.starts_with("multipart/") {
        let boundary = param(header(headers, "Content-Type").unwrap(), "boundary")
            .unwrap_or_else(|| panic!("a multipart boundary: {headers:?}"));
        let delimiter = format!("--{boundary}");
        let closing = format!("--{boundary}--");
        let mut current: Option<String> = None;
        let mut closed = false;
        for line in body.split('\n') {
            let line = line.trim_end();
            if line == closing {
                closed = true;
                break;
            }
            if line == delimiter {
                if let Some(part) = current.replace(String::new()) {
                    let (h, b) = split_entity(&part);
                    collect_parts(&h, b, out);
                }
                continue;
            }
            if let Some(part) = current.as_mut() {
                part.push_str(line);
                part.push('\n');
            }
        }
        assert!(
            closed,
            "the multipart is complete (closing boundary present)"
        );
        if let Some(part) = current {
            let (h, b) = split_entity(&part);
            collect_parts(&h, b, out);
        }
        return;
    }
    let encoding = header(headers, "Content-Transfer-Encoding")
        .unwrap_or("7bit")
        .trim()
        .to_ascii_lowercase();
    let body = match encoding.as_str() {
        "base64" => {
            let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(compact)
                .expect("valid base64");
            String::from_utf8_lossy(&bytes).into_owned()
        }
        "quoted-printable" => decode_quoted_printable(body),
        _ => body.to_owned(),
    };
    out.push(Part { content_type, body });
}

fn decode_quoted_printable(body: &str) -> String {
    let mut bytes = Vec::with_capacity(body.len());
    for line in body.split('\n') {
        let line = line.trim_end();
        let (line, soft) = match line.strip_suffix('=') {
            Some(rest) => (rest, true),
            None => (line, false),
        };
        let raw = line.as_bytes();
        let mut i = 0;
        while i < raw.len() {
            let escaped = (raw[i] == b'=')
                .then(|| std::str::from_utf8(raw.get(i + 1..i + 3)?).ok())
                .flatten()
                .and_then(|hex| u8::from_str_radix(hex, 16).ok());
            match escaped {
                Some(b) => {
                    bytes.push(b);
                    i += 3;
                }
                None => {
                    bytes.push(raw[i]);
                    i += 1;
                }
            }
        }
        if !soft {
            bytes.push(b'\n');
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Asserts one mail per recipient in `emails` and nothing else, with distinct Message-IDs; returns
/// each recipient's code.
fn codes_by_recipient(mails: &[Mail], emails: &[String]) -> HashMap<String, String> {
    let ids: HashSet<String> = mails.iter().map(Mail::message_id).collect();
    assert_eq!(ids.len(), mails.len(), "no Message-ID twice");
    assert_eq!(
        mails.len(),
        emails.len(),
        "one mail per request, no duplicate"
    );
    let mut codes = HashMap::new();
    for mail in mails {
        let to = mail.rcpt_to().to_owned();
        assert!(emails.contains(&to), "a mail for {to}, who asked for none");
        assert_eq!(mail.subject(), "Your IMS password reset code");
        assert!(
            codes.insert(to.clone(), mail.code()).is_none(),
            "{to} got two mails"
        );
    }
    codes
}

// --- the outbox, read directly --------------------------------------------------------------

async fn open_db(url: &str) -> Db {
    Db::connect(&DatabaseUrl::new(url.to_owned()), 2)
        .await
        .expect("test database opens")
}

async fn pending(db: &Db) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE status = 'pending'")
        .fetch_one(db.pool())
        .await
        .unwrap()
}

/// Waits until nothing is left to deliver (every request decided, every mail sent or failed).
pub(crate) async fn settle(db: &Db, within: Duration) {
    assert!(
        eventually(within, || async move { pending(db).await == 0 }).await,
        "the outbox still has pending rows after {within:?}"
    );
}

#[derive(Debug)]
pub(crate) struct MailRow {
    pub(crate) id: String,
    pub(crate) recipient: String,
    pub(crate) status: String,
    pub(crate) attempts: i64,
    pub(crate) next_attempt_at: i64,
    pub(crate) lease_until: i64,
    pub(crate) last_error: Option<String>,
    pub(crate) payload: String,
}

type RawRow = (
    String,
    String,
    String,
    i64,
    i64,
    i64,
    Option<String>,
    String,
);

pub(crate) async fn mail_rows(db: &Db) -> Vec<MailRow> {
    let rows: Vec<RawRow> = sqlx::query_as(
        "SELECT id, recipient, status, attempts, next_attempt_at, lease_until, last_error, payload
         FROM outbox WHERE kind = 'mail' ORDER BY id",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    rows.into_iter()
        .map(
            |(
                id,
                recipient,
                status,
                attempts,
                next_attempt_at,
                lease_until,
                last_error,
                payload,
            )| {
                MailRow {
                    id,
                    recipient,
                    status,
                    attempts,
                    next_attempt_at,
                    lease_until,
                    last_error,
                    payload,
                }
            },
        )
        .collect()
}

/// Waits until `n` mails are queued, each tried at least `attempts` times and back in the queue
/// (not leased), i.e. each attempt so far failed and a retry is scheduled.
async fn wait_deferred(db: &Db, n: usize, attempts: i64, within: Duration) -> Vec<MailRow> {
    let deadline = Instant::now() + within;
    loop {
        let rows = mail_rows(db).await;
        let ready = rows.len() == n
            && rows.iter().all(|r| {
                r.status == "pending"
                    && r.attempts >= attempts
                    && r.lease_until == 0
                    && r.last_error.is_some()
            });
        if ready {
            return rows;
        }
        assert!(
            Instant::now() < deadline,
            "{n} mails were not deferred after {attempts} attempt(s) within {within:?}: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// --- HTTP ------------------------------------------------------------------------------------

async fn post(client: &reqwest::Client, url: String, body: &Value) -> reqwest::Response {
    client.post(url).json(body).send().await.unwrap()
}

/// `forgot-password` for `email` through the IMS at `base`; asserts 202; returns the body.
pub(crate) async fn forgot(client: &reqwest::Client, base: &str, email: &str) -> String {
    let r = post(
        client,
        format!("{base}/auth/forgot-password"),
        &json!({ "email": email }),
    )
    .await;
    assert_eq!(r.status(), 202, "forgot-password for {email}");
    r.text().await.unwrap()
}

/// `verify-otp` with a password-reset code; asserts 200; returns the reset token.
pub(crate) async fn verify(
    client: &reqwest::Client,
    base: &str,
    email: &str,
    code: &str,
) -> String {
    let r = post(
        client,
        format!("{base}/auth/verify-otp"),
        &json!({ "email": email, "otp": code }),
    )
    .await;
    assert_eq!(r.status(), 200, "verify-otp for {email}");
    let body: Value = r.json().await.unwrap();
    assert!(body["expires_in"].as_i64().unwrap() > 0, "{body}");
    let token = body["reset_token"].as_str().expect("a reset token");
    assert!(token.len() >= 32);
    token.to_owned()
}

// --- `ims serve` as a child process -----------------------------------------------------------

/// `ims users create` for an active, verified line leader with [`PASSWORD`].
async fn cli_user(db: &TestDb, email: &str) {
    let mut cmd = ims_on(db, &[]);
    cmd.args(["users", "create", "--email", email, "--name", "Line Lead"])
        .args(["--role", "LINE_LEADER", "--password-stdin"]);
    let mut child = cmd.spawn().expect("ims starts");
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(format!("{PASSWORD}\n").as_bytes())
        .await
        .unwrap();
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("users create finishes")
        .unwrap();
    assert!(
        out.status.success(),
        "users create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// --- the tests -------------------------------------------------------------------------------

#[tokio::test]
async fn password_reset_journey_over_smtp() {
    let smtp = SmtpSink::start(free_port()).await;
    let url = smtp.url();
    let app = spawn_app_with(&[
        ("IMS_MAIL_TRANSPORT", "smtp"),
        ("IMS_SMTP_URL", &url),
        ("IMS_MAIL_FROM", "IMS Test <ims@factory.example>"),
        ("IMS_PUBLIC_URL", "http://ims.factory.example/"),
    ])
    .await;
    let (_, email) = app.create_user(&[Role::Manager]).await;
    let session = app.login_ok(&email).await;

    forgot(&app.client, &app.base, &email).await;
    smtp.wait_for(1, Duration::from_secs(20)).await;
    settle(&app.state.db, Duration::from_secs(10)).await;
    let mails = smtp.messages();
    assert_eq!(mails.len(), 1, "exactly one mail: {mails:?}");
    let mail = &mails[0];
    assert!(
        mail.header("From").unwrap().contains("ims@factory.example"),
        "{:?}",
        mail.headers
    );
    assert!(mail.header("To").unwrap().contains(&email));
    assert_eq!(mail.rcpt_to(), email, "the envelope recipient");
    assert_eq!(mail.subject(), "Your IMS password reset code");
    assert!(mail
        .header("Content-Type")
        .unwrap()
        .to_ascii_lowercase()
        .starts_with("multipart/alternative"));
    let message_id = mail.message_id();
    assert!(
        message_id.starts_with('<') && message_id.ends_with("@ims.factory.example>"),
        "{message_id}"
    );
    for name in ["From", "To", "Subject", "Message-ID", "Date"] {
        assert_eq!(mail.headers_named(name), 1, "one {name} header");
    }
    assert_eq!(mail.parts.len(), 2, "a text and an HTML part");
    assert!(mail.part("text/plain").contains("10 minutes"));
    assert!(mail
        .part("text/plain")
        .contains("http://ims.factory.example/"));
    let code = mail.code();

    let reset_token = verify(&app.client, &app.base, &email, &code).await;
    let r = post(
        &app.client,
        app.url("/auth/reset-password"),
        &json!({ "reset_token": reset_token, "new_password": NEW_PASSWORD }),
    )
    .await;
    assert_eq!(r.status(), 204);

    // The code was used; the old session is gone; only the new password works.
    let r = post(
        &app.client,
        app.url("/auth/verify-otp"),
        &json!({ "email": email, "otp": code }),
    )
    .await;
    assert_eq!(r.status(), 400, "a used code");
    assert_eq!(app.refresh(&session.refresh).await.status(), 401);
    assert_eq!(app.login(&email, PASSWORD).await.status(), 401);
    assert_eq!(app.login(&email, NEW_PASSWORD).await.status(), 200);

    smtp.wait_for(2, Duration::from_secs(20)).await;
    settle(&app.state.db, Duration::from_secs(10)).await;
    let mails = smtp.messages();
    assert_eq!(mails.len(), 2, "the code mail and the notice");
    let notice = mails
        .iter()
        .find(|m| m.message_id() != message_id)
        .expect("a second mail");
    assert_eq!(notice.subject(), "Your IMS password was changed");
    assert_eq!(notice.rcpt_to(), email);
    assert!(notice
        .header("Content-Type")
        .unwrap()
        .to_ascii_lowercase()
        .starts_with("multipart/alternative"));
    assert!(
        six_digit_runs(&notice.all_text()).is_empty(),
        "no code in the notice: {}",
        notice.all_text()
    );
    assert!(!notice.all_text().contains(&code));
}

#[tokio::test]
async fn codes_requested_while_smtp_is_down_arrive_once_it_is_back() {
    let port = free_port();
    let url = smtp_url(port);
    let app = spawn_app_with(&[("IMS_MAIL_TRANSPORT", "smtp"), ("IMS_SMTP_URL", &url)]).await;
    let mut emails = Vec::new();
    for _ in 0..3 {
        emails.push(app.create_user(&[Role::LineLeader]).await.1);
    }
    for email in &emails {
        forgot(&app.client, &app.base, email).await;
    }

    // Tried, refused, tried again 5 s later, refused again: the next try is 10 s further on.
    let rows = wait_deferred(&app.state.db, 3, 2, Duration::from_secs(25)).await;
    let now = ims::clock::now();
    for row in &rows {
        assert!(
            row.next_attempt_at > now && row.next_attempt_at <= now + 10,
            "the third try is scheduled with backoff: {row:?} (now {now})"
        );
        assert!(!row.payload.is_empty(), "the sealed message is kept");
    }

    let started = Instant::now();
    let smtp = SmtpSink::start(port).await;
    smtp.wait_for(3, Duration::from_secs(30)).await;
    settle(&app.state.db, Duration::from_secs(10)).await;
    eprintln!(
        "mail arrived {:?} after the SMTP server came up",
        started.elapsed()
    );
    let codes = codes_by_recipient(&smtp.messages(), &emails);
    for row in mail_rows(&app.state.db).await {
        assert_eq!(row.status, "sent", "{row:?}");
        assert!(row.payload.is_empty(), "a sent message's payload is wiped");
    }
    for email in &emails {
        verify(&app.client, &app.base, email, &codes[email]).await;
    }
}

#[tokio::test]
async fn mail_queued_before_a_sigkill_is_sent_after_the_restart() {
    let db = TestDb::new().await;
    let port = free_port();
    let url = smtp_url(port);
    let settings = [
        ("IMS_MAIL_TRANSPORT", "smtp"),
        ("IMS_SMTP_URL", url.as_str()),
    ];
    let emails: Vec<String> = (0..3)
        .map(|i| format!("crash{i}-{}@factory.example", uuid::Uuid::new_v4().simple()))
        .collect();
    for email in &emails {
        cli_user(&db, email).await;
    }
    let server = Serve::start(ims_on(&db, &settings)).await;
    for email in &emails {
        forgot(&server.client, &server.base, email).await;
    }
    let outbox = open_db(&db.url).await;
    // Every request decided, every mail tried once and waiting for its retry: then the crash.
    wait_deferred(&outbox, 3, 1, Duration::from_secs(20)).await;
    server.kill().await;
    let queued = mail_rows(&outbox).await;
    assert_eq!(queued.len(), 3);
    assert!(queued.iter().all(|r| r.status == "pending"), "{queued:?}");

    let smtp = SmtpSink::start(port).await;
    let server = Serve::start(ims_on(&db, &settings)).await;
    smtp.wait_for(3, Duration::from_secs(30)).await;
    settle(&outbox, Duration::from_secs(10)).await;
    let codes = codes_by_recipient(&smtp.messages(), &emails);
    for row in &queued {
        let code = &codes[&row.recipient];
        assert!(
            !row.payload.contains(code.as_str()),
            "the queued payload is sealed"
        );
    }
    for email in &emails {
        verify(&server.client, &server.base, email, &codes[email]).await;
    }
    server.stop().await;
    outbox.close().await;
}

#[tokio::test]
async fn two_instances_on_one_database_send_each_mail_exactly_once() {
    if !is_postgres() {
        eprintln!("note: two instances on one database need PostgreSQL; skipped on SQLite");
        return;
    }
    let db = TestDb::new().await;
    let smtp = SmtpSink::start(free_port()).await;
    let url = smtp.url();
    let settings = [
        ("IMS_MAIL_TRANSPORT", "smtp"),
        ("IMS_SMTP_URL", url.as_str()),
        ("IMS_PUBLIC_URL", "http://ims.factory.example/"),
    ];
    // The first start generates the shared keys and pepper; the second reads them.
    let a = Serve::start(ims_on(&db, &settings)).await;
    let b = Serve::start(ims_on(&db, &settings)).await;

    let users = open_db(&db.url).await;
    let hasher = Hasher::new().unwrap();
    let mut emails = Vec::new();
    for i in 0..20 {
        let user = accounts::create(
            &users,
            &hasher,
            None,
            NewAccount {
                email: format!("pair{i}-{}@factory.example", uuid::Uuid::new_v4().simple()),
                name: format!("Operator {i}"),
                roles: vec![Role::LineLeader],
                password: Some(SecretString::from(PASSWORD)),
                email_verified: true,
            },
            Actor { id: None, ip: None },
        )
        .await
        .expect("user created");
        emails.push(user.email);
    }
    let instances = [&a, &b];
    for (i, email) in emails.iter().enumerate() {
        let via = instances[i % 2];
        forgot(&via.client, &via.base, email).await;
    }

    smtp.wait_for(20, Duration::from_secs(45)).await;
    settle(&users, Duration::from_secs(15)).await;
    let mails = smtp.messages();
    assert_eq!(mails.len(), 20, "20 files, no duplicate");
    for mail in &mails {
        assert!(mail.message_id().ends_with("@ims.factory.example>"));
    }
    let codes = codes_by_recipient(&mails, &emails);
    let rows = mail_rows(&users).await;
    assert_eq!(rows.len(), 20);
    assert!(rows.iter().all(|r| r.status == "sent"), "{rows:?}");

    let sent_by = |s: &Serve| s.log().matches("mail sent").count();
    eprintln!("mails sent by A: {}, by B: {}", sent_by(&a), sent_by(&b));

    // A code requested through one instance verifies through the other.
    for (i, email) in emails.iter().enumerate() {
        let other = instances[(i + 1) % 2];
        verify(&other.client, &other.base, email, &codes[email]).await;
    }
    a.stop().await;
    b.stop().await;
    users.close().await;
}

#[tokio::test]
async fn file_transport_writes_whole_files_and_only_for_real_accounts() {
    let app = spawn_app().await;
    let (_, email) = app.create_user(&[Role::Manager]).await;
    let unknown = format!("nobody-{}@factory.example", uuid::Uuid::new_v4().simple());

    let first = post(
        &app.client,
        app.url("/auth/forgot-password"),
        &json!({ "email": unknown }),
    )
    .await;
    let second = post(
        &app.client,
        app.url("/auth/forgot-password"),
        &json!({ "email": email }),
    )
    .await;
    assert_eq!(first.status(), 202);
    assert_eq!(second.status(), 202);
    assert_eq!(
        first.headers().get("content-type"),
        second.headers().get("content-type")
    );
    assert_eq!(first.bytes().await.unwrap(), second.bytes().await.unwrap());

    settle(&app.state.db, Duration::from_secs(15)).await;
    let dir = app.db.dir.join("mail");
    let names = file_names(&dir);
    assert_eq!(names.len(), 1, "one .eml, for the real account: {names:?}");
    let name = &names[0];
    let stem = name.strip_suffix(".eml").expect("an .eml file");
    uuid::Uuid::parse_str(stem).expect("named by the outbox id");
    let raw = std::fs::read(dir.join(name)).unwrap();
    let mail = Mail::parse(name, &raw);
    assert!(mail.header("To").unwrap().contains(&email));
    assert!(!String::from_utf8_lossy(&raw).contains(&unknown));
    assert_eq!(mail.subject(), "Your IMS password reset code");
    assert!(
        mail.message_id().contains(stem),
        "Message-ID from the outbox id"
    );
    let code = mail.code();
    verify(&app.client, &app.base, &email, &code).await;
}

/// Every entry of `dir`; panics on a temporary or hidden leftover.
fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for name in &names {
        assert!(
            !name.starts_with('.') && !name.ends_with(".tmp"),
            "a leftover temporary file: {names:?}"
        );
    }
    names
}

#[tokio::test]
async fn admins_see_failed_mail_without_its_code_and_can_send_it_again() {
    let port = free_port();
    let url = smtp_url(port);
    let app = spawn_app_with(&[("IMS_MAIL_TRANSPORT", "smtp"), ("IMS_SMTP_URL", &url)]).await;
    let admin = app.login_as(&[Role::Admin]).await;
    let manager = app.login_as(&[Role::Manager]).await;
    let (_, email) = app.create_user(&[Role::LineLeader]).await;
    forgot(&app.client, &app.base, &email).await;

    // First try refused; make the next one the last allowed, and due now.
    let rows = wait_deferred(&app.state.db, 1, 1, Duration::from_secs(15)).await;
    let id = rows[0].id.clone();
    sqlx::query("UPDATE outbox SET attempts = $2, next_attempt_at = 0 WHERE id = $1")
        .bind(&id)
        .bind(ims::mail::outbox::MAX_ATTEMPTS - 1)
        .execute(app.state.db.pool())
        .await
        .unwrap();
    let db = &app.state.db;
    let failed = eventually(Duration::from_secs(15), || async move {
        mail_rows(db).await[0].status == "failed"
    })
    .await;
    assert!(failed, "{:?}", mail_rows(db).await);

    let r = app.get("/api/admin/mail/failed", &manager.access).await;
    assert_eq!(r.status(), 403);
    let r = app.get("/api/admin/mail/failed", &admin.access).await;
    assert_eq!(r.status(), 200);
    let listing = r.text().await.unwrap();
    let body: Value = serde_json::from_str(&listing).unwrap();
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{body}");
    let item = &items[0];
    assert_eq!(item["id"], id.as_str());
    assert_eq!(item["recipient"], email.as_str());
    assert_eq!(item["template"], "password_reset_code");
    assert_eq!(item["attempts"], ims::mail::outbox::MAX_ATTEMPTS);
    assert!(item["last_error"].as_str().is_some_and(|e| !e.is_empty()));
    assert!(item["failed_at"].is_string() && item["created_at"].is_string());
    let keys: HashSet<&str> = item
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let expected = [
        "id",
        "template",
        "recipient",
        "attempts",
        "last_error",
        "created_at",
        "failed_at",
    ];
    assert_eq!(keys, expected.into_iter().collect(), "no body, no payload");
    for field in ["template", "last_error", "created_at", "failed_at"] {
        let value = item[field].as_str().unwrap();
        assert!(six_digit_runs(value).is_empty(), "{field}: {value}");
    }
    let audited = app.audit(&admin.access, "mail_failed").await;
    assert!(
        audited
            .iter()
            .any(|e| e["detail"]["outbox_id"] == id.as_str()),
        "{audited:?}"
    );

    let retry = format!("/api/admin/mail/{id}/retry");
    let r = app.post(&retry, &manager.access, &json!({})).await;
    assert_eq!(r.status(), 403);
    let r = app
        .post(
            &format!("/api/admin/mail/{}/retry", uuid::Uuid::now_v7()),
            &admin.access,
            &json!({}),
        )
        .await;
    assert_eq!(r.status(), 404, "an unknown id");
    let r = app.post(&retry, &admin.access, &json!({})).await;
    assert_eq!(r.status(), 204);
    let r = app.post(&retry, &admin.access, &json!({})).await;
    assert_eq!(r.status(), 404, "no longer failed");

    // Queued again with fresh attempts: the server's return is enough.
    let smtp = SmtpSink::start(port).await;
    smtp.wait_for(1, Duration::from_secs(20)).await;
    settle(&app.state.db, Duration::from_secs(10)).await;
    let codes = codes_by_recipient(&smtp.messages(), std::slice::from_ref(&email));
    let code = &codes[&email];
    assert!(
        !listing.contains(code.as_str()),
        "the failed listing showed the code"
    );
    let r = app.get("/api/admin/mail/failed", &admin.access).await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["items"], json!([]), "{body}");
    verify(&app.client, &app.base, &email, code).await;
}

#[test]
fn the_mime_reader_decodes_quoted_printable_and_base64_parts() {
    let html = base64::engine::general_purpose::STANDARD
        .encode("<p>Code <b>042917</b> \u{2014} 1.6em</p>");
    let raw = format!(
        "Subject: Code\r\nContent-Type: multipart/alternative;\r\n boundary=\"b-1\"\r\n\r\n\
         --b-1\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: quoted-printable\r\n\r\nYour code: 04=\r\n2917 =E2=80=94 a=3Db\r\n\
         --b-1\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n\
         {html}\r\n--b-1--\r\n"
    );
    let mail = Mail::parse("m", raw.as_bytes());
    assert_eq!(mail.subject(), "Code");
    assert_eq!(mail.parts.len(), 2);
    assert_eq!(
        mail.part("text/plain").trim_end(),
        "Your code: 042917 \u{2014} a=b"
    );
    assert!(mail.part("text/html").contains("<b>042917</b> \u{2014}"));
    assert_eq!(mail.code(), "042917");
    assert_eq!(six_digit_runs("1234567 123456 12345 #1b1f24"), ["123456"]);
}

#[tokio::test]
async fn a_refused_recipient_fails_at_once_and_other_mail_still_goes() {
    let smtp = SmtpSink::start_refusing_bounces(free_port()).await;
    let url = smtp.url();
    let app = spawn_app_with(&[("IMS_MAIL_TRANSPORT", "smtp"), ("IMS_SMTP_URL", &url)]).await;
    let admin = app.login_as(&[Role::Admin]).await;
    let bounce = format!("bounce-{}@factory.example", uuid::Uuid::new_v4().simple());
    app.create_user_with(&bounce, "Bo Unce", &[Role::LineLeader], true)
        .await;
    let (_, fine) = app.create_user(&[Role::LineLeader]).await;
    forgot(&app.client, &app.base, &bounce).await;
    forgot(&app.client, &app.base, &fine).await;

    smtp.wait_for(1, Duration::from_secs(20)).await;
    settle(&app.state.db, Duration::from_secs(10)).await;
    let codes = codes_by_recipient(&smtp.messages(), std::slice::from_ref(&fine));
    verify(&app.client, &app.base, &fine, &codes[&fine]).await;

    // A 5xx is permanent: failed after the first attempt, no retry.
    let rows = mail_rows(&app.state.db).await;
    let refused = rows
        .iter()
        .find(|r| r.recipient == bounce)
        .expect("the refused mail's row");
    assert_eq!(refused.status, "failed", "{refused:?}");
    assert_eq!(refused.attempts, 1, "{refused:?}");
    let r = app.get("/api/admin/mail/failed", &admin.access).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{body}");
    assert_eq!(items[0]["recipient"], bounce.as_str());
    assert_eq!(items[0]["attempts"], 1);
    let error = items[0]["last_error"].as_str().unwrap();
    assert!(error.contains("550"), "the refusal is named: {error}");
}
