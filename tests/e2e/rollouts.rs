//! Rule rollouts on a live gateway: a candidate judged in shadow and never enforced, its decision
//! diff, promotion through the gate, automatic rollback of a version that traps, explain, signed
//! plugins and the compatibility check.

mod explain;
mod signing;

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::plugins::{sanitizer, test_plugin};
use crate::common::{Db, Gateway, send};
use crate::plugins::{plugins_dir, status_of};

/// How long a shadow call may take to be counted on a loaded machine.
const SHADOW_BOUND: Duration = Duration::from_secs(30);

/// A gateway serving `probe.wasm` (`serving`) as the sanitizer `probe`, with `extra` lines in its
/// entry.
async fn with_probe_file(serving: &str, extra: &str) -> Gateway {
    let dir = tempfile::tempdir().unwrap().keep();
    std::fs::copy(test_plugin(serving), dir.join("probe.wasm")).unwrap();
    std::fs::copy(test_plugin("force_push_guard"), dir.join("candidate.wasm")).unwrap();
    let config = format!(
        "plugins_dir = {:?}\nplugins_debounce_ms = 50\n{}",
        dir.display().to_string(),
        sanitizer("probe", Path::new("probe.wasm"), extra)
    );
    Gateway::start_with_plugins(Db::Sqlite, &config).await
}

/// Whether a reload left the new `probe.wasm` serving: it loaded it, or the file watcher had
/// already (then the reload finds it unchanged).
pub(crate) fn swapped_in(report: &Value) -> bool {
    [&report["loaded"], &report["unchanged"]]
        .iter()
        .any(|names| names.as_array().is_some_and(|n| n.contains(&json!("probe"))))
}

/// The audit rows of `action`, once there are any: the gateway's own rollout rows commit just
/// after the swap they record.
async fn audited(gw: &Gateway, action: &str) -> Vec<Value> {
    let deadline = std::time::Instant::now() + SHADOW_BOUND;
    loop {
        let rows = gw.audit(&format!("action={action}")).await;
        if !rows.is_empty() || std::time::Instant::now() > deadline {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn digest_of(file: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(file).unwrap()))
}

async fn shadow(gw: &Gateway) -> (StatusCode, Value) {
    gw.get("/v1/plugins/probe/shadow").await
}

async fn probe_status(gw: &Gateway) -> Value {
    let (status, list) = gw.get("/v1/plugins").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    status_of(&list, "probe").clone()
}

async fn wait_for_shadow_calls(gw: &Gateway, calls: u64) -> Value {
    let deadline = std::time::Instant::now() + SHADOW_BOUND;
    loop {
        let report = shadow(gw).await.1;
        if report["diff"]["calls"] == calls {
            return report;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the candidate never judged {calls} calls: {report}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Mixed traffic: `n` more commands after `done`, every third a force push (as a shell script or
/// a `git` command); returns how many were force pushes. Every one is accepted: the candidate
/// that would deny them is only in shadow. Each waits for the candidate's call, so that none
/// finds the shadow slot busy and is dropped.
async fn traffic(gw: &Gateway, done: usize, n: usize) -> u64 {
    let mut pushes = 0;
    for i in done..done + n {
        let body = match i % 6 {
            0 => {
                json!({"kind": "shell", "script": "git push --force origin main", "env": {"GIT_AUTHOR_EMAIL": "s3cret-env-value"}})
            }
            3 => json!({"kind": "git", "args": ["push", "-f"]}),
            1 => json!({"kind": "git", "args": ["status"]}),
            _ => json!({"kind": "shell", "script": format!("echo {i}")}),
        };
        pushes += u64::from(i % 3 == 0);
        let (status, reply) = gw.post("/v1/projects/demo/commands", body).await;
        assert_eq!(
            status,
            StatusCode::ACCEPTED,
            "nothing the candidate decides is enforced: {reply}"
        );
        wait_for_shadow_calls(gw, i as u64 + 1).await;
    }
    pushes
}

async fn metrics(gw: &Gateway) -> String {
    let reply = send(gw.request(Method::GET, "/metrics").bearer_auth(&gw.admin_token)).await;
    reply.body.as_str().unwrap_or_default().to_owned()
}

async fn promote(gw: &Gateway, token: &str, body: Option<Value>) -> (StatusCode, Value) {
    gw.call(Method::POST, "/v1/plugins/probe/promote", token, body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shadow_candidate_is_diffed_never_enforced_and_promoted_once_its_gate_holds() {
    let gate = "shadow_file = \"candidate.wasm\"\n[plugins.rollout.gate]\nmin_calls = 24\nmax_disagreement_rate = 0.5\nmax_p99_ratio = 1000.0";
    let gw = with_probe_file("probe_version_a", gate).await;
    let candidate = digest_of(&plugins_dir(&gw).join("candidate.wasm"));
    let (status, report) = shadow(&gw).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["digest"], candidate.as_str());
    assert_eq!(probe_status(&gw).await["shadow_digest"], candidate.as_str());

    let pushes = traffic(&gw, 0, 12).await;
    let report = wait_for_shadow_calls(&gw, 12).await;
    assert_eq!(
        report["diff"]["disagreements"],
        json!({"allow_to_deny": pushes}),
        "{report}"
    );
    assert_eq!(report["diff"]["agreements"], 12 - pushes);
    let samples = report["diff"]["samples"].as_array().unwrap();
    assert_eq!(samples.len() as u64, pushes);
    for sample in samples {
        assert_eq!(sample["serving"]["verdict"], "allow");
        assert_eq!(
            sample["candidate"],
            json!({"verdict": "deny", "reason": "force pushes are not allowed"})
        );
    }
    let shown = report.to_string();
    assert!(
        !shown.contains("s3cret-env-value") && shown.contains("GIT_AUTHOR_EMAIL"),
        "env values are redacted: {shown}"
    );
    assert_eq!(report["gate_holds"], false);

    let (status, refused) = promote(&gw, &gw.admin_token, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(refused["error"]["code"], "gate_failed");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("judged 12 calls; the gate needs 24"),
        "{refused}"
    );
    assert_eq!(
        probe_status(&gw).await["digest"],
        digest_of(&test_plugin("probe_version_a")).as_str()
    );

    let more = traffic(&gw, 12, 12).await;
    let report = wait_for_shadow_calls(&gw, 24).await;
    assert_eq!(report["diff"]["disagreements"]["allow_to_deny"], pushes + more);
    assert_eq!(report["gate_holds"], true, "{report}");
    let line = format!(
        "rdev_plugin_shadow_calls_total{{comparison=\"allow_to_deny\",plugin=\"probe\"}} {}",
        pushes + more
    );
    assert!(metrics(&gw).await.contains(&line), "{line}");

    let (status, promoted) = promote(&gw, &gw.admin_token, Some(json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{promoted}");
    assert_eq!(promoted["digest"], candidate.as_str());
    assert_eq!(promoted["forced"], false);
    let (status, body) = gw
        .post(
            "/v1/projects/demo/commands",
            json!({"kind": "git", "args": ["push", "--force"]}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "the promoted version serves: {body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("force pushes are not allowed")
    );
    let status = probe_status(&gw).await;
    assert_eq!(status["digest"], candidate.as_str());
    assert_eq!(status["shadow_digest"], Value::Null);
    assert_eq!(shadow(&gw).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        digest_of(&plugins_dir(&gw).join("probe.wasm")),
        candidate,
        "promotion installs the file"
    );
    for action in ["plugin.promotion_refused", "plugin.promoted"] {
        assert_eq!(
            gw.audit(&format!("action={action}")).await.len(),
            1,
            "{action} is audited"
        );
    }
    // The file watcher sees the installed file: it is what serves, so nothing changes.
    let (_, report) = gw.post("/v1/plugins/reload", json!({})).await;
    assert!(
        report["unchanged"].as_array().unwrap().contains(&json!("probe")),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uploaded_candidate_is_checked_and_only_an_admin_may_upload_or_force() {
    let gw = with_probe_file("probe_version_a", "").await;
    assert_eq!(shadow(&gw).await.1["error"]["code"], "no_candidate");
    let upload = |token: &str, body: Vec<u8>| {
        gw.request(Method::PUT, "/v1/plugins/probe/shadow")
            .bearer_auth(token)
            .header("content-type", "application/wasm")
            .body(body)
    };
    let (_, operator) = gw
        .key(json!({"name": "operator", "scopes": ["config:write", "audit:read"]}))
        .await;
    let wasm = std::fs::read(test_plugin("force_push_guard")).unwrap();
    assert_eq!(
        send(upload(&operator, wasm.clone())).await.status,
        StatusCode::FORBIDDEN
    );
    let garbage = send(upload(&gw.admin_token, b"not a component".to_vec())).await;
    assert_eq!(garbage.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", garbage.body);
    assert_eq!(garbage.body["error"]["code"], "plugin_refused");
    assert_eq!(
        shadow(&gw).await.0,
        StatusCode::NOT_FOUND,
        "a refused upload leaves no candidate"
    );

    let loaded = send(upload(&gw.admin_token, wasm)).await;
    assert_eq!(loaded.status, StatusCode::OK, "{}", loaded.body);
    let (status, report) = shadow(&gw).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(report["source"]["kind"], "upload");
    let (status, refused) = promote(&gw, &operator, Some(json!({"force": true}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "only an admin forces: {refused}");
    let (status, _) = promote(&gw, &operator, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "the gate needs 100 calls by default");
    let (status, forced) = promote(&gw, &gw.admin_token, Some(json!({"force": true}))).await;
    assert_eq!(status, StatusCode::OK, "{forced}");
    assert_eq!(forced["forced"], true);
    assert!(!forced["overridden"].as_array().unwrap().is_empty());
    let (status, _) = gw
        .post(
            "/v1/projects/demo/commands",
            json!({"kind": "git", "args": ["push", "-f"]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    send(upload(
        &gw.admin_token,
        std::fs::read(test_plugin("probe_version_b")).unwrap(),
    ))
    .await;
    let removed = gw
        .call(Method::DELETE, "/v1/plugins/probe/shadow", &gw.admin_token, None)
        .await;
    assert_eq!(removed.0, StatusCode::NO_CONTENT);
    assert_eq!(shadow(&gw).await.0, StatusCode::NOT_FOUND);
    let (status, _) = gw.get("/v1/plugins/nope/shadow").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_that_traps_is_rolled_back_and_what_it_trapped_on_was_refused() {
    let budget = "[plugins.rollout.rollback]\nmax_traps = 2\nmax_failures = 10\nwindow_secs = 600";
    let gw = with_probe_file("probe_version_a", budget).await;
    let file = plugins_dir(&gw).join("probe.wasm");
    let (good, bad) = (digest_of(&file), digest_of(&test_plugin("flaky_trap")));
    std::fs::copy(test_plugin("flaky_trap"), &file).unwrap();
    let (_, report) = gw.post("/v1/plugins/reload", json!({})).await;
    assert!(swapped_in(&report), "{report}");
    assert_eq!(probe_status(&gw).await["digest"], bad.as_str());

    let mut refused = Vec::new();
    for n in 1..=45 {
        let (status, body) = gw
            .post(
                "/v1/projects/demo/commands",
                json!({"kind": "shell", "script": format!("echo {n}")}),
            )
            .await;
        match status {
            StatusCode::ACCEPTED => {}
            _ => {
                assert_eq!(body["error"]["code"], "policy_failed", "{body}");
                refused.push(n);
            }
        }
    }
    assert_eq!(
        refused,
        [10, 20, 30],
        "what trapped was refused fail-closed; the third trap rolled it back"
    );

    let status = probe_status(&gw).await;
    assert_eq!(status["digest"], good.as_str(), "{status}");
    assert_eq!(status["state"], "degraded");
    assert_eq!(status["rolled_back_from"]["digest"], bad.as_str());
    assert_eq!(status["rolled_back_from"]["to_digest"], good.as_str());
    assert!(
        status["rolled_back_from"]["reason"]
            .as_str()
            .unwrap()
            .contains("3 traps"),
        "{status}"
    );
    let rows = audited(&gw, "plugin.rolled_back").await;
    assert_eq!(rows.len(), 1, "the rollback is audited");
    assert!(
        metrics(&gw)
            .await
            .contains("rdev_plugin_rollbacks_total{plugin=\"probe\"} 1")
    );
    assert!(
        gw.logs.lines().iter().any(|l| l.contains("rolled back")),
        "the rollback is logged"
    );

    // The rolled-back file is refused until another one is in place.
    let (_, report) = gw.post("/v1/plugins/reload", json!({})).await;
    assert!(report["failed"].to_string().contains("was rolled back"), "{report}");
    assert_eq!(probe_status(&gw).await["digest"], good.as_str());
    std::fs::copy(test_plugin("probe_version_b"), &file).unwrap();
    let (_, report) = gw.post("/v1/plugins/reload", json!({})).await;
    assert!(swapped_in(&report), "{report}");
    let status = probe_status(&gw).await;
    assert_eq!(status["rolled_back_from"], Value::Null);
    assert_eq!(status["state"], "active");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_built_against_another_package_version_is_refused_with_the_version_it_needs() {
    let gw = with_probe_file("probe_version_a", "").await;
    let status = probe_status(&gw).await;
    assert_eq!(status["package_version"], "0.1.0", "{status}");
    let file: PathBuf = plugins_dir(&gw).join("probe.wasm");
    let mut wasm = std::fs::read(test_plugin("probe_version_b")).unwrap();
    // Import names are length-prefixed: a version of the same length keeps the file valid.
    let (from, to) = (
        b"rdev:plugin/types@0.1.0".as_slice(),
        b"rdev:plugin/types@0.2.0".as_slice(),
    );
    let at = wasm
        .windows(from.len())
        .position(|w| w == from)
        .expect("the component imports rdev:plugin/types");
    wasm[at..at + to.len()].copy_from_slice(to);
    std::fs::write(&file, wasm).unwrap();
    let (_, report) = gw.post("/v1/plugins/reload", json!({})).await;
    let error = report["failed"][0]["error"].as_str().unwrap_or_default().to_owned();
    assert!(
        error.contains("built against rdev:plugin@0.2.0") && error.contains("needs a component built against 0.1.x"),
        "{report}"
    );
    assert_eq!(
        probe_status(&gw).await["digest"],
        digest_of(&test_plugin("probe_version_a")).as_str()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_candidate_whose_gate_holds_long_enough_is_promoted_by_itself() {
    let gate = "shadow_file = \"candidate.wasm\"\n[plugins.rollout.gate]\nmin_calls = 3\nmax_disagreement_rate = 1.0\nmax_p99_ratio = 1000.0\nauto_promote_after_secs = 1";
    let gw = with_probe_file("probe_version_a", gate).await;
    let candidate = digest_of(&plugins_dir(&gw).join("candidate.wasm"));
    traffic(&gw, 0, 3).await;
    let deadline = std::time::Instant::now() + SHADOW_BOUND;
    while probe_status(&gw).await["digest"] != candidate.as_str() {
        assert!(
            std::time::Instant::now() < deadline,
            "never promoted: {}",
            probe_status(&gw).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rows = audited(&gw, "plugin.promoted").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["key_id"], Value::Null, "the gateway promoted it: {rows:?}");
    let (status, _) = gw
        .post(
            "/v1/projects/demo/commands",
            json!({"kind": "git", "args": ["push", "-f"]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}
