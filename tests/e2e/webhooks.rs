//! Webhooks end to end: a receiver started by the test gets the events of a real command, rendered
//! by the Slack formatter and signed; every signature is checked by the reference verifier (PyPI
//! `standardwebhooks`, which `scripts/test.sh` installs) and by the gateway's own check. Failing
//! receivers are retried on the schedule, 410 disables, a crash mid-backoff loses nothing, and
//! internal addresses are refused.

mod isolation;
mod operations;
mod rebinding;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use rdev::webhooks::secrets::Secret;
use rdev::webhooks::signing;
use serde_json::{Value, json};

use crate::common::{Db, Gateway, wait_until};

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    id: String,
    timestamp: i64,
    signature: String,
    content_type: String,
    body: Vec<u8>,
    answered: u16,
}

/// An HTTP receiver on loopback that records every request and answers the statuses queued in
/// `script` (then 200); a queued `0` never answers (the request hangs).
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<Vec<u16>>>,
}

impl Receiver {
    async fn start(script: &[u16]) -> (Receiver, String) {
        let receiver = Receiver {
            script: Arc::new(Mutex::new(script.iter().rev().copied().collect())),
            ..Receiver::default()
        };
        let state = receiver.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let state = state.clone();
                async move {
                    let answer = state.script.lock().unwrap().pop().unwrap_or(200);
                    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                    state.got.lock().unwrap().push(Received {
                        id: header("webhook-id"),
                        timestamp: header("webhook-timestamp").parse().unwrap_or(0),
                        signature: header("webhook-signature"),
                        content_type: header("content-type"),
                        body: body.to_vec(),
                        answered: answer,
                    });
                    if answer == 0 {
                        std::future::pending::<()>().await;
                    }
                    (StatusCode::from_u16(answer).unwrap(), "ok")
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (receiver, url)
    }

    fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// A receiver that never answers.
    async fn hanging() -> (Receiver, String) {
        Self::start(&[0; 64]).await
    }
}

/// Delivery settings that reach the loopback receiver and retry quickly.
fn config(schedule: &str) -> String {
    format!(
        "[webhooks]\nallow_http = true\nallowed_targets = [\"127.0.0.1/32\"]\npoll_interval_ms = 50\n\
         retry_schedule_secs = {schedule}\n"
    )
}

async fn subscribe(gw: &Gateway, body: Value) -> (String, String) {
    let (status, created) = gw.post("/v1/webhooks", body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let secret = created["secret"].as_str().unwrap().to_owned();
    gw.logs.secret(secret.clone());
    (created["id"].as_str().unwrap().to_owned(), secret)
}

/// Checks every message with the reference verifier (Python `standardwebhooks`).
fn reference_verify(secret: &str, messages: &[Received]) {
    let cases: Vec<Value> = messages
        .iter()
        .map(|m| {
            json!({"id": m.id, "timestamp": m.timestamp.to_string(), "signature": m.signature,
                "body": base64::engine::general_purpose::STANDARD.encode(&m.body)})
        })
        .collect();
    let script = "import base64, json, sys\nfrom standardwebhooks.webhooks import Webhook\n\
        secret, cases = sys.argv[1], json.load(sys.stdin)\nhook = Webhook(secret)\n\
        for c in cases:\n    hook.verify(base64.b64decode(c['body']), {'webhook-id': c['id'], \
        'webhook-timestamp': c['timestamp'], 'webhook-signature': c['signature']})\nprint(len(cases))\n";
    let mut child = std::process::Command::new("python3")
        .args(["-c", script, secret])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(Value::Array(cases).to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the reference verifier refused a message: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), messages.len().to_string());
}

async fn command_events_reach_slack_signed_and_verified(db: Db) {
    let gw = Gateway::start_with_plugins(db, &config("[0.2]")).await;
    let (receiver, url) = Receiver::start(&[]).await;
    let (id, secret) = subscribe(
        &gw,
        json!({"url": url, "events": ["command.*"], "formatter": "slack-formatter", "description": "ci"}),
    )
    .await;
    let cmd = gw.run("demo", json!({"kind": "shell", "script": "echo hello"})).await;
    gw.wait_done(cmd["id"].as_str().unwrap()).await;
    wait_until(Duration::from_secs(60), || async { receiver.got().len() >= 3 }).await;
    let got = receiver.got();
    let texts: Vec<String> = got
        .iter()
        .map(|m| String::from_utf8_lossy(&m.body).into_owned())
        .collect();
    for want in ["command accepted", "command started", "command succeeded"] {
        let found = got.iter().find(|m| {
            let body: Value = serde_json::from_slice(&m.body).unwrap();
            body["text"].as_str().is_some_and(|t| t.contains(want))
        });
        let m = found.unwrap_or_else(|| panic!("no {want} message in {texts:?}"));
        assert_eq!(m.content_type, "application/json");
        let body: Value = serde_json::from_slice(&m.body).unwrap();
        assert!(body["blocks"].is_array(), "{body}");
    }
    assert_eq!(got.len(), 3, "{texts:?}");
    let parsed = Secret::parse(&secret).unwrap();
    for m in &got {
        signing::verify(&parsed, &m.id, m.timestamp, &m.signature, &m.body, m.timestamp).unwrap();
    }
    reference_verify(&secret, &got);
    let (_, shown) = gw.get(&format!("/v1/webhooks/{id}")).await;
    let (_, listed) = gw.get("/v1/webhooks").await;
    let (_, audit) = gw.get("/v1/audit?limit=200").await;
    for text in [shown.to_string(), listed.to_string(), audit.to_string()] {
        assert!(!text.contains(&secret), "the secret is shown after creation");
    }
    // Each attempt is recorded a moment after its receiver answered.
    let listed = format!("/v1/webhooks/{id}/deliveries");
    wait_until(Duration::from_secs(60), || async {
        let (_, page) = gw.get(&listed).await;
        page["deliveries"]
            .as_array()
            .is_some_and(|d| d.iter().all(|d| d["state"] == "succeeded"))
    })
    .await;
    let (_, page) = gw.get(&listed).await;
    assert_eq!(page["deliveries"].as_array().unwrap().len(), 3, "{page}");
}

async fn a_failing_receiver_is_retried_until_it_recovers_and_410_disables(db: Db) {
    let gw = Gateway::start_with_plugins(db, &config("[0.2, 0.2, 0.2]")).await;
    let (receiver, url) = Receiver::start(&[500, 503]).await;
    let (id, _) = subscribe(&gw, json!({"url": url, "events": ["webhook.test"]})).await;
    let (status, _) = gw.post(&format!("/v1/webhooks/{id}/test"), json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    wait_until(Duration::from_secs(60), || async {
        receiver.got().iter().any(|m| m.answered == 200)
    })
    .await;
    let got = receiver.got();
    assert_eq!(got.iter().map(|m| m.answered).collect::<Vec<_>>(), [500, 503, 200]);
    assert!(
        got.iter().all(|m| m.id == got[0].id),
        "webhook-id changes between attempts"
    );
    // The receiver has answered; the worker records the attempt a moment later.
    let succeeded = format!("/v1/webhooks/{id}/deliveries?state=succeeded");
    wait_until(Duration::from_secs(60), || async {
        gw.get(&succeeded).await.1["deliveries"][0]["id"].is_string()
    })
    .await;
    let (_, page) = gw.get(&succeeded).await;
    let delivery = page["deliveries"][0]["id"].as_str().unwrap().to_owned();
    let (_, detail) = gw.get(&format!("/v1/webhooks/{id}/deliveries/{delivery}")).await;
    let statuses: Vec<i64> = detail["attempt_log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status"].as_i64().unwrap())
        .collect();
    assert_eq!(statuses, [500, 503, 200], "{detail}");
    let (status, _) = gw
        .post(&format!("/v1/webhooks/{id}/deliveries/{delivery}/redeliver"), json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    wait_until(Duration::from_secs(60), || async { receiver.got().len() == 4 }).await;
    assert_eq!(receiver.got()[3].id, got[0].id, "a redelivery keeps its webhook-id");

    receiver.script.lock().unwrap().push(410);
    gw.post(&format!("/v1/webhooks/{id}/test"), json!({})).await;
    wait_until(Duration::from_secs(60), || async {
        gw.get(&format!("/v1/webhooks/{id}")).await.1["state"] == "disabled"
    })
    .await;
    let events = gw.audit("action=webhook.disabled").await;
    assert_eq!(events.len(), 1, "{events:?}");
    let (status, _) = gw.post(&format!("/v1/webhooks/{id}/test"), json!({})).await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a disabled subscription takes no test event"
    );
}

async fn a_gateway_killed_mid_backoff_delivers_once_after_restart(db: Db) {
    let mut gw = Gateway::start_with_plugins(db, &config("[2.0]")).await;
    let (receiver, url) = Receiver::start(&[500]).await;
    let (id, _) = subscribe(&gw, json!({"url": url, "events": ["webhook.test"]})).await;
    gw.post(&format!("/v1/webhooks/{id}/test"), json!({})).await;
    wait_until(Duration::from_secs(60), || async { !receiver.got().is_empty() }).await;
    gw.kill();
    gw.restart();
    wait_until(Duration::from_secs(60), || async {
        receiver.got().iter().any(|m| m.answered == 200)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let got = receiver.got();
    assert_eq!(got.iter().filter(|m| m.answered == 200).count(), 1, "{got:?}");
    assert!(got.iter().all(|m| m.id == got[0].id));
}

async fn internal_targets_are_refused_at_registration(db: Db) {
    let gw = Gateway::start_with_plugins(db, "").await;
    for url in [
        "https://127.0.0.1/",
        "https://2130706433/",
        "https://0x7f.0.0.1/",
        "https://0177.0.0.1/",
        "https://[::ffff:127.0.0.1]/",
        "https://169.254.169.254/latest/meta-data/",
        "https://[fd00:ec2::254]/",
        "https://0.0.0.0/",
        "https://localhost./",
        "https://x@127.0.0.1/",
        "https://10.1.2.3/",
        "http://example.com/",
    ] {
        let (status, body) = gw.post("/v1/webhooks", json!({"url": url, "events": ["*"]})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {body}");
        assert_eq!(body["error"]["fields"][0]["field"], "url", "{url}: {body}");
    }
    let (status, body) = gw
        .post(
            "/v1/webhooks",
            json!({"url": "https://example.com/", "events": ["nope"]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (_, reader) = gw.key(json!({"name": "r", "scopes": ["webhooks:read"]})).await;
    let (status, _) = gw
        .call(
            reqwest::Method::POST,
            "/v1/webhooks",
            &reader,
            Some(json!({"url": "https://example.com/", "events": ["*"]})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, list) = gw.call(reqwest::Method::GET, "/v1/webhooks", &reader, None).await;
    assert_eq!(
        (status, list["webhooks"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(0))
    );
}

/// A rollback is an event: a subscription to `plugin.rolled_back` gets it with the digests and
/// the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_is_delivered_as_an_event() {
    use crate::common::plugins::{default_plugin, entry, sanitizer, test_plugin};
    let dir = tempfile::tempdir().unwrap().keep();
    let file = dir.join("probe.wasm");
    std::fs::copy(test_plugin("probe_version_a"), &file).unwrap();
    let plugins = [
        sanitizer(
            "probe",
            std::path::Path::new("probe.wasm"),
            "[plugins.rollout.rollback]\nmax_traps = 0",
        ),
        entry(
            "generic-formatter",
            "webhook-formatter",
            &default_plugin("generic_formatter"),
            "",
        ),
    ]
    .concat();
    let extra = format!(
        "plugins_dir = {:?}\n{}{plugins}",
        dir.display().to_string(),
        config("[0.2]")
    );
    let gw = Gateway::start_with_plugins(Db::Sqlite, &extra).await;
    let (receiver, url) = Receiver::start(&[]).await;
    let body = json!({"url": url, "events": ["plugin.rolled_back"], "formatter": "generic-formatter"});
    subscribe(&gw, body).await;
    std::fs::copy(test_plugin("flaky_trap"), &file).unwrap();
    let (_, report) = gw.post("/v1/plugins/reload", json!({})).await;
    assert!(crate::rollouts::swapped_in(&report), "{report}");
    let (status, _) = gw
        .post(
            "/v1/projects/demo/commands",
            json!({"kind": "shell", "script": "echo 10"}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "the trap is refused and breaks the budget"
    );
    wait_until(Duration::from_secs(60), || async { !receiver.got().is_empty() }).await;
    let event: Value = serde_json::from_slice(&receiver.got()[0].body).unwrap();
    let text = event.to_string();
    assert!(text.contains("plugin.rolled_back") && text.contains("probe"), "{text}");
    assert!(text.contains("1 traps"), "the reason is delivered: {text}");
}

crate::on_both_databases!(
    command_events_reach_slack_signed_and_verified,
    a_failing_receiver_is_retried_until_it_recovers_and_410_disables,
    a_gateway_killed_mid_backoff_delivers_once_after_restart,
    internal_targets_are_refused_at_registration,
);
