//! `ims serve` as a child process of the test: the real binary on a test database, its port read
//! from its log, its output kept for assertions, stopped with SIGTERM (a clean exit is asserted)
//! or SIGKILL (a crash).

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use crate::cli::{collect, ims_command, listening_addr};
use crate::helpers::TestDb;

/// How long a debug `ims serve` may take to start on a busy 2-core machine.
const STARTUP: Duration = Duration::from_secs(60);

/// [`ims_command`] on the test database and its data directory (keys, OTP pepper), port 0.
pub(crate) fn ims_on(db: &TestDb, settings: &[(&str, &str)]) -> Command {
    let mut cmd = ims_command();
    cmd.env("IMS_DATA_DIR", &db.dir)
        .env("IMS_DATABASE_URL", &db.url)
        .env("IMS_LISTEN", "127.0.0.1:0")
        .current_dir(&db.dir);
    for (k, v) in settings {
        cmd.env(k, v);
    }
    cmd
}

/// A running `ims serve`.
pub(crate) struct Serve {
    child: Child,
    pub pid: u32,
    pub base: String,
    pub client: reqwest::Client,
    log: Arc<Mutex<String>>,
}

impl Serve {
    /// Spawns `cmd serve`, finds the port in its log and waits for `/healthz`.
    pub(crate) async fn start(mut cmd: Command) -> Serve {
        cmd.arg("serve").stdin(Stdio::null());
        let mut child = cmd.spawn().expect("ims serve starts");
        let pid = child.id().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        collect(child.stdout.take().unwrap(), log.clone(), Some(tx));
        collect(child.stderr.take().unwrap(), log.clone(), None);
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
            panic!(
                "no `ims listening` line ({:?})\n{}",
                child.try_wait(),
                log.lock().unwrap()
            );
        };
        let base = format!("http://{addr}");
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        wait_healthy(&client, &base, Instant::now() + STARTUP, || {
            log.lock().unwrap().clone()
        })
        .await;
        Serve {
            child,
            pid,
            base,
            client,
            log,
        }
    }

    pub(crate) fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// SIGKILL: no shutdown, no flushing, whatever is in flight is cut.
    pub(crate) async fn kill(mut self) {
        self.child.kill().await.expect("SIGKILL");
    }

    /// SIGTERM, then waits (at most 10 s) for a clean exit.
    pub(crate) async fn stop(self) {
        self.terminate();
        self.exited().await;
    }

    /// Sends SIGTERM (a graceful stop) without waiting.
    pub(crate) fn terminate(&self) {
        let sent = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status()
            .unwrap();
        assert!(sent.success());
    }

    /// Whether the process is still running.
    pub(crate) fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Waits (at most 10 s) for a clean exit; returns the whole log, read to the end.
    pub(crate) async fn exited(mut self) -> String {
        let status = tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("no exit within 10 s of SIGTERM\n{}", self.log()))
            .unwrap();
        assert!(status.success(), "{status}\n{}", self.log());
        // The readers reach the end of the closed pipes just after the exit.
        let mut log = self.log();
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let now = self.log();
            if now == log && log.ends_with('\n') {
                break;
            }
            log = now;
        }
        log
    }
}

/// Polls `GET {base}/healthz` until it answers 200; after `deadline`, fails the test with `log()`.
pub(crate) async fn wait_healthy(
    client: &reqwest::Client,
    base: &str,
    deadline: Instant,
    log: impl Fn() -> String,
) {
    loop {
        if let Ok(r) = client.get(format!("{base}/healthz")).send().await {
            if r.status() == 200 {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "/healthz never answered 200\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
