//! Test harness: starts the real `rdev` binary on a free port with its own data directory,
//! workspaces and (optionally) a fresh PostgreSQL database, and talks to it over HTTP.

pub mod backends;
pub mod logs;
pub mod plugins;
pub mod postgres;
pub mod sse;

use std::io::{BufRead, BufReader, Lines};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Which database a gateway uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// Generates one test per database from an `async fn(Db)`.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::common::Db::Sqlite).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::common::Db::Postgres).await })*
        }
    };
}

/// A running gateway and what it was started with.
pub struct Gateway {
    pub url: String,
    pub admin_token: String,
    pub dir: PathBuf,
    database_url: Option<String>,
    /// Where the projects live (another replica's, for a replica).
    workspaces: PathBuf,
    /// The key-hashing secret shared with another replica.
    key_hash_secret: Option<PathBuf>,
    extra_config: String,
    child: Option<Child>,
    /// Its stderr, checked when it is dropped.
    pub logs: logs::Logs,
    _tmp: Option<tempfile::TempDir>,
    pub client: reqwest::Client,
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_rdev")
}

impl Gateway {
    /// Starts a gateway with the default configuration plus `extra_config` (TOML), and no plugins:
    /// tests about something else must not depend on the default sanitizer's rules.
    pub async fn start(db: Db, extra_config: &str) -> Gateway {
        Self::start_with_plugins(db, &format!("plugins = []\n{extra_config}")).await
    }

    /// Starts a gateway whose plugins are the defaults, or those `extra_config` names.
    pub async fn start_with_plugins(db: Db, extra_config: &str) -> Gateway {
        Self::start_prepared(db, extra_config, |_| ()).await.1
    }

    /// Like [`start_with_plugins`](Self::start_with_plugins), after `prepare` ran on the (still
    /// empty) directory that will hold `data/` and `workspaces/`; what `prepare` returns comes
    /// first, so that a `let (guard, gw) = …` binding drops the gateway before the guard.
    pub async fn start_prepared<T>(db: Db, extra_config: &str, prepare: impl FnOnce(&Path) -> T) -> (T, Gateway) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_owned();
        let prepared = prepare(&dir);
        let database_url = match db {
            Db::Sqlite => None,
            Db::Postgres => Some(postgres::fresh_database().await),
        };
        let mut gw = Gateway {
            url: String::new(),
            admin_token: String::new(),
            workspaces: dir.join("workspaces"),
            key_hash_secret: None,
            dir,
            database_url,
            extra_config: extra_config.to_owned(),
            child: None,
            logs: logs::Logs::default(),
            _tmp: Some(tmp),
            client: rdev::http_client(),
        };
        gw.write_config();
        let mut lines = gw.launch(&[]);
        let token = lines
            .by_ref()
            .take(5)
            .map(Result::unwrap)
            .find_map(|line| line.trim().strip_prefix("rdev_").map(|t| format!("rdev_{t}")));
        std::thread::spawn(move || lines.for_each(drop));
        gw.admin_token = token.expect("first start prints an admin key");
        gw.logs.secret(gw.admin_token.clone());
        (prepared, gw)
    }

    pub fn workspaces(&self) -> PathBuf {
        self.workspaces.clone()
    }

    /// Starts another replica of this gateway (PostgreSQL only): its own process and data
    /// directory, the same database, key-hashing secret, workspaces and configuration.
    pub async fn start_replica(&self) -> Gateway {
        let tmp = tempfile::tempdir().unwrap();
        let mut gw = Gateway {
            url: String::new(),
            admin_token: self.admin_token.clone(),
            dir: tmp.path().to_owned(),
            database_url: Some(self.database_url.clone().expect("replicas share a PostgreSQL database")),
            workspaces: self.workspaces(),
            key_hash_secret: Some(self.dir.join("data/key-hash.secret")),
            extra_config: self.extra_config.clone(),
            child: None,
            logs: logs::Logs::default(),
            _tmp: Some(tmp),
            client: rdev::http_client(),
        };
        gw.write_config();
        gw.logs.secret(self.admin_token.clone());
        let lines = gw.launch(&[]);
        std::thread::spawn(move || lines.for_each(drop));
        gw
    }

    /// A connection pool of our own on the gateway's PostgreSQL database.
    pub async fn postgres(&self) -> sqlx::PgPool {
        let url = self.database_url.as_deref().expect("a PostgreSQL gateway");
        sqlx::PgPool::connect(url).await.unwrap()
    }

    /// This process's replica id, from `/ready`.
    pub async fn replica_id(&self) -> String {
        let reply = send(self.client.get(format!("{}/ready", self.url))).await;
        reply.body["replica_id"].as_str().expect("a replica id").to_owned()
    }

    fn config_path(&self) -> PathBuf {
        self.dir.join("rdev.toml")
    }

    /// Writes the configuration: the harness's own keys first (all top-level, so that
    /// `extra_config` may add top-level keys as well as tables). Leases are short, so that a
    /// killed gateway's commands are reconciled within seconds.
    fn write_config(&self) {
        let mut config = format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = {:?}\nshutdown_grace_secs = 2\nbackend.workspaces = {:?}\n\
             replicas.heartbeat_ms = 250\nreplicas.lease_ms = 3000\n",
            self.dir.join("data"),
            self.workspaces()
        );
        if let Some(url) = &self.database_url {
            config += &format!("database_url = {url:?}\n");
        }
        if let Some(secret) = &self.key_hash_secret {
            config += &format!("auth.key_hash_secret_file = {secret:?}\n");
        }
        // Tests about something else must not trip the default tier (they burst, poll and
        // queue far beyond it): the harness lifts it unless the test configures limits itself.
        if !self.extra_config.contains("limits") {
            config += "limits.failed_auth_burst = 100000\nlimits.tiers.default = { requests_per_second = 100000.0, \
                       burst = 100000, commands_per_minute = 100000, max_streams = 100000, \
                       max_queued_per_project = 100000 }\n";
        }
        config += &self.extra_config;
        std::fs::write(self.config_path(), config).unwrap();
    }

    /// Starts the process with extra environment variables, reads the banner, and returns the
    /// rest of its stdout.
    fn launch(&mut self, env: &[(&str, &str)]) -> Lines<BufReader<ChildStdout>> {
        let mut child = Command::new(binary())
            .arg("--config")
            .arg(self.config_path())
            .arg("serve")
            .env("RUST_LOG", "info,sqlx=warn")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        self.logs.follow(child.stderr.take().unwrap());
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().expect("banner").unwrap();
        self.url = first
            .strip_prefix("rdev listening on ")
            .expect("banner line")
            .to_owned();
        self.child = Some(child);
        lines
    }

    /// Kills the process without warning (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
        child.wait().unwrap()
    }

    /// Starts the process again on the same data. Only the banner line is read: the bootstrap
    /// key block follows it only on a first start, so waiting for it here would block forever.
    pub fn restart(&mut self) {
        self.restart_with_env(&[]);
    }

    /// Sends a request with a token and optional JSON body.
    pub async fn call(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if let Some(token) = body["token"].as_str() {
            self.logs.secret(token);
        }
        (status, body)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, &self.admin_token, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, &self.admin_token, Some(body)).await
    }

    /// Creates a key through the API and returns (id, token).
    pub async fn key(&self, body: Value) -> (String, String) {
        let (status, key) = self.post("/v1/keys", body).await;
        assert_eq!(status, StatusCode::CREATED, "{key}");
        (
            key["id"].as_str().unwrap().to_owned(),
            key["token"].as_str().unwrap().to_owned(),
        )
    }

    /// Creates a project directory.
    pub fn project(&self, name: &str) -> PathBuf {
        let dir = self.workspaces().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Waits until a project is listed (discovery runs periodically).
    pub async fn wait_for_project(&self, name: &str) {
        let path = format!("/v1/projects/{name}");
        wait_until(Duration::from_secs(10), || async {
            self.get(&path).await.0 == StatusCode::OK
        })
        .await;
    }

    /// Starts a command in a project and returns its JSON.
    pub async fn run(&self, project: &str, body: Value) -> Value {
        let (status, cmd) = self.post(&format!("/v1/projects/{project}/commands"), body).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{cmd}");
        cmd
    }

    pub async fn shell(&self, project: &str, script: &str) -> String {
        self.run(project, json!({"kind": "shell", "script": script})).await["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn command(&self, id: &str) -> Value {
        self.get(&format!("/v1/commands/{id}")).await.1
    }

    /// Waits for a command to reach a terminal state and returns it.
    pub async fn wait_done(&self, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let cmd = self.command(id).await;
            let state = cmd["state"].as_str().unwrap_or_default().to_owned();
            if !["queued", "running"].contains(&state.as_str()) {
                return cmd;
            }
            assert!(Instant::now() < deadline, "command {id} did not finish: {cmd}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for a command to be in `state`.
    pub async fn wait_state(&self, id: &str, state: &str) {
        wait_until(Duration::from_secs(20), || async {
            self.command(id).await["state"] == state
        })
        .await;
    }

    /// A connection pool of our own on the gateway's embedded SQLite file, beside the gateway's.
    pub async fn sqlite(&self) -> sqlx::SqlitePool {
        let url = format!("sqlite://{}", self.dir.join("data/rdev.db").display());
        sqlx::SqlitePool::connect(&url).await.unwrap()
    }

    /// Waits until the gateway has stored the process group of a running command (embedded
    /// SQLite only): the process starts, and prints, before that write is committed, so a test
    /// that kills the gateway must wait for it to know what a restart can find.
    pub async fn wait_process_group_recorded(&self, id: &str) {
        let pool = self.sqlite().await;
        wait_until(Duration::from_secs(20), || async {
            let row: Option<(Option<i64>,)> = sqlx::query_as("SELECT pgid FROM commands WHERE id = $1")
                .bind(id)
                .fetch_optional(&pool)
                .await
                .unwrap();
            row.is_some_and(|(pgid,)| pgid.is_some())
        })
        .await;
        pool.close().await;
    }

    /// Erases the stored process group of a command (embedded SQLite only), as if the gateway
    /// had died between starting the process and recording it.
    pub async fn forget_process_group(&self, id: &str) {
        let pool = self.sqlite().await;
        let forgotten = sqlx::query("UPDATE commands SET pgid = NULL, runner = NULL WHERE id = $1")
            .bind(id)
            .execute(&pool)
            .await
            .unwrap();
        assert_eq!(forgotten.rows_affected(), 1);
        pool.close().await;
    }

    /// All audit events (newest first) matching a query string.
    pub async fn audit(&self, query: &str) -> Vec<Value> {
        let (status, page) = self.get(&format!("/v1/audit?{query}")).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        page["events"].as_array().unwrap().clone()
    }
}

impl Drop for Gateway {
    /// Stops the process and checks its log lines (unless the test failed already: a second
    /// panic would hide the first).
    fn drop(&mut self) {
        self.kill();
        let secret_file = self
            .key_hash_secret
            .clone()
            .unwrap_or_else(|| self.dir.join("data/key-hash.secret"));
        if let Ok(bytes) = std::fs::read(secret_file) {
            self.logs.secret_bytes(&bytes);
        }
        let json = !self.extra_config.contains("log_format = \"text\"");
        let problems = self.logs.problems(json);
        if !problems.is_empty() && !std::thread::panicking() {
            panic!("{} bad log lines, the first: {}", problems.len(), problems[0]);
        }
    }
}

/// Polls `check` until it holds or `limit` passes (then panics).
pub async fn wait_until<F, Fut>(limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "condition not reached within {limit:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Whether the tests run as root (`/proc/self` belongs to the effective user).
pub fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Whether a process exists.
pub fn process_alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
}

/// A whole response: status, headers, and the body as JSON (or as a JSON string when it is not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    /// A header's value ("" when absent or not text).
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }
}

/// Sends a request and reads the whole response.
pub async fn send(req: reqwest::RequestBuilder) -> Reply {
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    Reply {
        status,
        headers,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
    }
}

impl Gateway {
    /// A request to `path`, without credentials.
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, format!("{}{path}", self.url))
    }

    /// The configuration file the gateway was started with.
    pub fn config_file(&self) -> PathBuf {
        self.config_path()
    }
}

/// The key id inside a token (`rdev_<key id>_<secret>`).
pub fn key_id_of(token: &str) -> String {
    let rest = token.strip_prefix("rdev_").expect("token prefix");
    rest.rsplit_once('_').expect("token shape").0.to_owned()
}

impl Gateway {
    /// Like [`restart`](Self::restart), with extra environment variables set on the gateway
    /// process itself.
    pub fn restart_with_env(&mut self, env: &[(&str, &str)]) {
        self.kill();
        let lines = self.launch(env);
        std::thread::spawn(move || lines.for_each(drop));
    }
}

/// Waits (up to 20 s) for a pid file to be written and returns the pid.
pub async fn read_pid(path: &Path) -> i32 {
    let mut pid = None;
    wait_until(Duration::from_secs(20), || {
        pid = std::fs::read_to_string(path)
            .ok()
            .and_then(|t| t.trim().parse::<i32>().ok());
        std::future::ready(pid.is_some())
    })
    .await;
    pid.unwrap()
}

impl Gateway {
    /// Posts a command and returns only the status.
    pub async fn run_status(&self, project: &str, body: Value) -> StatusCode {
        self.post(&format!("/v1/projects/{project}/commands"), body).await.0
    }
}

impl Gateway {
    /// The gateway process's pid, while it runs.
    pub fn pid(&self) -> Option<i32> {
        self.child.as_ref().map(|c| c.id() as i32)
    }
}
