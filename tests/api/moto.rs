//! The AWS stand-in: `moto_server` on a free loopback port, and the Python scripts of
//! `tests/support/` that set up pools, queues, buckets and secrets on it.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, Command};

use crate::helpers::eventually;

/// A moto server on a free loopback port, stopped when dropped.
pub struct Moto {
    pub endpoint: String,
    _child: Child,
}

impl Moto {
    pub async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self::start_on(port).await
    }

    /// Runs a setup script of `tests/support/` against this stand-in; returns what it printed.
    pub async fn setup(&self, script: &str) -> Value {
        self.run(script, &[], "").await
    }

    /// Runs a script of `tests/support/` with arguments after the endpoint and `stdin` as its
    /// standard input; returns what it printed (JSON).
    pub async fn run(&self, script: &str, args: &[&str], stdin: &str) -> Value {
        let mut child = Command::new("python3")
            .arg(format!(
                "{}/tests/support/{script}",
                env!("CARGO_MANIFEST_DIR")
            ))
            .arg(&self.endpoint)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.as_bytes()).await.unwrap();
        drop(input);
        let out = child.wait_with_output().await.unwrap();
        assert!(
            out.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    pub fn port(&self) -> u16 {
        self.endpoint
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap()
    }

    pub async fn start_on(port: u16) -> Self {
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect(
                "moto_server runs (python3 -m pip install 'moto[server]', or run scripts/test.sh)",
            );
        let endpoint = format!("http://127.0.0.1:{port}");
        let up = eventually(Duration::from_secs(30), || async {
            reqwest::get(format!("{endpoint}/moto-api/")).await.is_ok()
        })
        .await;
        assert!(up, "moto_server did not start");
        Self {
            endpoint,
            _child: child,
        }
    }
}
