//! A gateway started under `prlimit --nofile=N:N`, as an operator's small descriptor limit
//! would leave it (the harness's own launcher cannot wrap the binary).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use crate::common::binary;

/// A running gateway with a descriptor limit.
pub struct Limited {
    pub url: String,
    pub token: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Limited {
    /// Starts a gateway (no plugins, SQLite) whose soft and hard `RLIMIT_NOFILE` are `nofile`;
    /// `None` without `prlimit`.
    pub fn start(nofile: u32) -> Option<Limited> {
        let available = Command::new("prlimit").arg("--version").output();
        if !available.is_ok_and(|o| o.status.success()) {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("rdev.toml");
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:0\"\nplugins = []\ndata_dir = {:?}\nbackend.workspaces = {:?}\n",
                dir.path().join("data"),
                dir.path().join("workspaces")
            ),
        )
        .unwrap();
        let mut child = Command::new("prlimit")
            .arg(format!("--nofile={nofile}:{nofile}"))
            .arg(binary())
            .arg("--config")
            .arg(&config)
            .arg("serve")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let banner = lines.next().expect("banner").unwrap();
        let url = banner
            .strip_prefix("rdev listening on ")
            .expect("banner line")
            .to_owned();
        let token = lines
            .by_ref()
            .take(5)
            .map(Result::unwrap)
            .find_map(|line| line.trim().strip_prefix("rdev_").map(|t| format!("rdev_{t}")))
            .expect("first start prints an admin key");
        std::thread::spawn(move || lines.for_each(drop));
        Some(Limited {
            url,
            token,
            child,
            _dir: dir,
        })
    }

    /// The `host:port` it listens on.
    pub fn addr(&self) -> String {
        self.url.strip_prefix("http://").expect("http URL").to_owned()
    }
}

impl Drop for Limited {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
