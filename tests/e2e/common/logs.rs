//! Every gateway's stderr, kept and checked when the gateway is dropped: each line is a JSON
//! object with `level`, `message` and `target`; lines about a request carry its `request_id`;
//! no line holds a secret the test knows (an API token, the key-hashing secret).

use std::io::{BufRead, BufReader};
use std::process::ChildStderr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The lines of every process of one gateway, and the secrets they must not contain.
#[derive(Default)]
pub struct Logs {
    lines: Arc<Mutex<Vec<String>>>,
    readers: Vec<JoinHandle<()>>,
    secrets: Mutex<Vec<String>>,
}

impl Logs {
    /// Keeps a process's stderr (and still shows it, as the test's output).
    pub fn follow(&mut self, stderr: ChildStderr) {
        let lines = self.lines.clone();
        self.readers.push(std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("{line}");
                lines.lock().unwrap().push(line);
            }
        }));
    }

    /// A value no line may contain.
    pub fn secret(&self, value: impl Into<String>) {
        let value = value.into();
        let mut secrets = self.secrets.lock().unwrap();
        if !value.is_empty() && !secrets.contains(&value) {
            secrets.push(value);
        }
    }

    /// The secret file's bytes, in the forms a log line could show them.
    pub fn secret_bytes(&self, bytes: &[u8]) {
        self.secret(bytes.iter().map(|b| format!("{b:02x}")).collect::<String>());
        self.secret(format!("{bytes:?}"));
    }

    /// The lines kept so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Waits for the processes' output to end (they exited), then checks every line.
    pub fn problems(&mut self, json: bool) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        for reader in self.readers.drain(..) {
            // A child the gateway left behind could hold its stderr open: do not wait forever.
            while !reader.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if reader.is_finished() {
                let _ = reader.join();
            }
        }
        let (lines, secrets) = (self.lines.lock().unwrap(), self.secrets.lock().unwrap());
        lines.iter().filter_map(|l| problem(l, &secrets, json)).collect()
    }
}

/// What is wrong with one line, if anything.
pub fn problem(line: &str, secrets: &[String], json: bool) -> Option<String> {
    if let Some(secret) = secrets.iter().find(|s| line.contains(s.as_str())) {
        let shown: String = secret.chars().take(12).collect();
        return Some(format!("a secret ({shown}…) is logged: {line}"));
    }
    if !json {
        return None;
    }
    let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(line) else {
        return Some(format!("not a JSON object: {line}"));
    };
    for field in ["level", "message", "target"] {
        if !fields.get(field).is_some_and(Value::is_string) {
            return Some(format!("no `{field}`: {line}"));
        }
    }
    let target = fields["target"].as_str().unwrap_or_default();
    // The HTTP layer above the connection handling works for one request at a time.
    let request_scoped = target.starts_with("rdev::http::") && !target.starts_with("rdev::http::server");
    let has_request_id =
        fields.contains_key("request_id") || fields.get("span").is_some_and(|span| span.get("request_id").is_some());
    (request_scoped && !has_request_id).then(|| format!("a request's line without `request_id`: {line}"))
}

#[test]
fn the_check_catches_each_kind_of_bad_line() {
    let secrets = ["rdev_key_0011_secret".to_owned()];
    let good = r#"{"level":"INFO","message":"handled","target":"rdev::http::context","request_id":"r1"}"#;
    assert_eq!(problem(good, &secrets, true), None);
    let cases = [
        ("plain text", "not a JSON object"),
        (r#"{"level":"INFO","target":"rdev::app"}"#, "no `message`"),
        (r#"{"message":"m","target":"rdev::app"}"#, "no `level`"),
        (r#"{"level":"INFO","message":"m"}"#, "no `target`"),
        (
            r#"{"level":"INFO","message":"m","target":"rdev::http::error"}"#,
            "without `request_id`",
        ),
        (
            r#"{"level":"INFO","message":"rdev_key_0011_secret","target":"rdev::app"}"#,
            "a secret",
        ),
    ];
    for (line, expected) in cases {
        let found = problem(line, &secrets, true).unwrap_or_default();
        assert!(found.contains(expected), "{line}: {found}");
    }
    assert_eq!(
        problem("plain text", &secrets, false),
        None,
        "text logs are only checked for secrets"
    );
}
