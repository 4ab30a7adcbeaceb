//! Fresh PostgreSQL databases for tests, on the server named by `RDEV_TEST_DATABASE_URL`
//! (`scripts/test.sh` starts a throwaway cluster and sets it). Each call creates a new,
//! uniquely named database, so tests never touch data they did not create.

use sqlx::{Connection, Executor};

/// The admin URL of the test server. Fails loudly when it is missing: PostgreSQL tests never skip.
pub fn server_url() -> String {
    std::env::var("RDEV_TEST_DATABASE_URL").expect(
        "RDEV_TEST_DATABASE_URL is not set: run the suite with scripts/test.sh, which starts a throwaway PostgreSQL",
    )
}

/// Creates a new empty database and returns its URL.
pub async fn fresh_database() -> String {
    let server = server_url();
    let name = format!("rdev_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&server)
        .await
        .expect("connect to the test PostgreSQL");
    conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .unwrap();
    let (base, _) = server.rsplit_once('/').expect("URL with a database name");
    format!("{base}/{name}")
}

/// A PostgreSQL cluster of a test's own (initdb in a temporary directory, on a free port), for
/// tests that stop the server: the shared server must keep serving the other tests.
pub struct PrivateCluster {
    bin: std::path::PathBuf,
    dir: tempfile::TempDir,
    pub port: u16,
}

impl PrivateCluster {
    /// Creates and starts a cluster.
    pub fn start() -> PrivateCluster {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL is installed (scripts/test.sh installs it)")
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .find(|bin| bin.join("initdb").exists())
            .expect("an initdb under /usr/lib/postgresql/*/bin");
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cluster = PrivateCluster { bin, dir, port };
        cluster.run(
            "initdb",
            &["-D", &cluster.data(), "-U", "rdev", "--auth=trust", "-E", "UTF8"],
        );
        cluster.resume();
        cluster
    }

    /// The URL of its `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://rdev@127.0.0.1:{}/postgres", self.port)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    /// Starts the server (again) and waits until it accepts connections.
    pub fn resume(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log").display().to_string();
        self.run(
            "pg_ctl",
            &["-D", &self.data(), "-l", &log, "-w", "-o", &options, "start"],
        );
    }

    /// Stops the server the hard way (`pg_ctl -m immediate`), as a crash would.
    pub fn stop_immediate(&self) {
        self.run("pg_ctl", &["-D", &self.data(), "-m", "immediate", "-w", "stop"]);
    }

    fn run(&self, program: &str, args: &[&str]) {
        let out = self.command(program).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A PostgreSQL program, run as the `postgres` user when the tests run as root (the server
    /// refuses to run as root).
    fn command(&self, program: &str) -> std::process::Command {
        let path = self.bin.join(program);
        if crate::common::running_as_root() {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            std::process::Command::new(path)
        }
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self
            .command("pg_ctl")
            .args(["-D", &data, "-m", "immediate", "stop"])
            .output();
    }
}
