//! Starting a real `rdev serve` process for a benchmark: the banner line gives its URL, and a
//! first start on a fresh database also prints the bootstrap admin token.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A started gateway process.
pub struct Launched {
    pub child: Child,
    pub url: String,
    /// The bootstrap token, if `first` asked for it (only a first start prints one).
    pub token: Option<String>,
}

/// Starts `rdev --config CONFIG serve` with error-level logs; the rest of its stdout is drained.
pub fn launch(config: &Path, first: bool) -> Launched {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rdev"))
        .arg("--config")
        .arg(config)
        .arg("serve")
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let banner = lines.next().unwrap().unwrap();
    let url = banner.strip_prefix("rdev listening on ").unwrap().to_owned();
    let token = first
        .then(|| {
            lines
                .by_ref()
                .take(5)
                .map(Result::unwrap)
                .find_map(|l| l.trim().strip_prefix("rdev_").map(|t| format!("rdev_{t}")))
        })
        .flatten();
    std::thread::spawn(move || lines.for_each(drop));
    Launched { child, url, token }
}
