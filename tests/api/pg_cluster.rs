//! A throwaway PostgreSQL cluster of our own (initdb under a temp directory, its own port), for
//! what the shared test server must not be put through: password checks and TLS, a rotated
//! password, and being stopped and started again under load.

use std::path::PathBuf;
use std::process::Command as StdCommand;

/// A throwaway PostgreSQL cluster that checks passwords (SCRAM), unlike the test server, and
/// speaks TLS with a certificate made for it by a throwaway CA (`ca.crt`, for
/// `IMS_DATABASE_URL`'s `sslrootcert`).
pub struct PgCluster {
    dir: PathBuf,
    bin: PathBuf,
    pub port: u16,
    as_postgres: bool,
    /// The handle that stops and removes the cluster when dropped.
    owner: bool,
}

impl PgCluster {
    pub fn start(password: &str) -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL server binaries under /usr/lib/postgresql (scripts/test.sh installs them)")
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|b| b.join("initdb").exists())
            .max()
            .expect("an initdb under /usr/lib/postgresql/*/bin");
        let dir = std::env::temp_dir().join(format!("ims-pw-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("pw"), password).unwrap();
        // A CA, and a server certificate for 127.0.0.1 signed by it.
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
             keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        let d = dir.display();
        for step in [
            format!("req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=ims-test-ca -keyout {d}/ca.key -out {d}/ca.crt"),
            format!("req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout {d}/server.key -out {d}/server.csr"),
            format!("x509 -req -in {d}/server.csr -CA {d}/ca.crt -CAkey {d}/ca.key -CAcreateserial -days 1 -extfile {d}/server.ext -out {d}/server.crt"),
        ] {
            let out = StdCommand::new("openssl")
                .args(step.split(' '))
                .output()
                .unwrap();
            assert!(out.status.success(), "openssl {step}: {}", String::from_utf8_lossy(&out.stderr));
        }
        // SAFETY: geteuid has no preconditions and cannot fail.
        let as_postgres = unsafe { libc::geteuid() } == 0;
        if as_postgres {
            assert!(StdCommand::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .unwrap()
                .success());
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let pg = Self {
            dir,
            bin,
            port,
            as_postgres,
            owner: true,
        };
        let data = pg.dir.join("data");
        pg.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=scram-sha-256",
                &format!("--pwfile={}", pg.dir.join("pw").display()),
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ],
        );
        pg.start_server();
        pg
    }

    /// A second handle on the same cluster, e.g. to stop and start it from a blocking task; it
    /// leaves the cluster running when dropped.
    pub fn clone_handle(&self) -> Self {
        Self {
            dir: self.dir.clone(),
            bin: self.bin.clone(),
            port: self.port,
            as_postgres: self.as_postgres,
            owner: false,
        }
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    /// `pg_ctl start` (again): the same port, data and TLS certificate; waits until it accepts.
    pub fn start_server(&self) {
        let options = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -k {dir} -c fsync=off -c ssl=on \
             -c ssl_cert_file={dir}/server.crt -c ssl_key_file={dir}/server.key",
            port = self.port,
            dir = self.dir.display()
        );
        let log = self.dir.join("log").display().to_string();
        let data = self.data();
        self.run(
            "pg_ctl",
            &[
                "-D", &data, "-l", &log, "-o", &options, "-w", "-t", "30", "start",
            ],
        );
    }

    /// `pg_ctl stop -m fast`: every session is terminated, in-flight transactions are rolled back,
    /// and the port stops accepting — as in a database restart or a failover.
    pub fn stop_server(&self) {
        let data = self.data();
        self.run("pg_ctl", &["-D", &data, "-m", "fast", "-w", "stop"]);
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let path = self.bin.join(tool);
        let mut cmd = if self.as_postgres {
            let mut c = StdCommand::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            StdCommand::new(&path)
        };
        let out = cmd.args(args).current_dir("/").output().unwrap();
        assert!(
            out.status.success(),
            "{tool}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The database URL, verifying the server's certificate.
    pub fn url(&self, password: Option<&str>) -> String {
        let tls = format!(
            "sslmode=verify-full&sslrootcert={}",
            self.dir.join("ca.crt").display()
        );
        match password {
            Some(p) => format!(
                "postgres://postgres:{p}@127.0.0.1:{}/postgres?{tls}",
                self.port
            ),
            None => format!("postgres://postgres@127.0.0.1:{}/postgres?{tls}", self.port),
        }
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if !self.owner {
            return;
        }
        let data = self.dir.join("data");
        let path = self.bin.join("pg_ctl");
        let mut cmd = if self.as_postgres {
            let mut c = StdCommand::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            StdCommand::new(&path)
        };
        let _ = cmd
            .args([
                "-D",
                data.to_str().unwrap_or_default(),
                "-m",
                "immediate",
                "stop",
            ])
            .current_dir("/")
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
