//! Every plugin call gets a fresh instance that has been configured once: a plugin keeping state
//! in globals (`tests/plugins/call-counter`) sees no trace of earlier calls, of a call that
//! trapped, or of the version or configuration it replaced.

use std::time::Duration;

use serde_json::json;

use crate::common::plugins::test_plugin;
use crate::common::wait_until;
use crate::plugins::{plugins_dir, probe_reason};

const FRESH: &str = "call 1 of this instance, configured 1 times";

async fn counter() -> crate::common::Gateway {
    let gw = crate::plugins::with_probe("call_counter", "").await;
    assert!(plugins_dir(&gw).join("probe.wasm").exists());
    gw
}

async fn reason(gw: &crate::common::Gateway, script: &str) -> String {
    probe_reason(gw, script)
        .await
        .expect("the counter denies scripts with `count`")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_sees_a_fresh_configured_instance() {
    let gw = counter().await;
    for i in 0..20 {
        let reason = reason(&gw, &format!("echo count {i}")).await;
        assert!(reason.contains(FRESH), "call {i}: {reason}");
    }
    // Calls that were allowed count too, in an instance that is then thrown away.
    for _ in 0..5 {
        assert!(probe_reason(&gw, "echo hello").await.is_none());
    }
    assert!(reason(&gw, "echo count").await.contains(FRESH));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trap_leaves_nothing_behind_for_the_next_call() {
    let gw = counter().await;
    let trapped = probe_reason(&gw, "echo trap")
        .await
        .expect("a trapped call refuses the command");
    assert!(!trapped.contains("call "), "{trapped}");
    for _ in 0..5 {
        assert!(reason(&gw, "echo count").await.contains(FRESH));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swap_starts_from_a_fresh_instance_of_the_new_configuration() {
    let gw = counter().await;
    assert!(
        reason(&gw, "echo count")
            .await
            .contains(&format!("{FRESH}, label none"))
    );
    let config = std::fs::read_to_string(gw.config_file()).unwrap();
    let changed = config.replace(
        "file = \"probe.wasm\"",
        "file = \"probe.wasm\"\nconfig = { label = \"second\" }",
    );
    std::fs::write(gw.config_file(), changed).unwrap();
    wait_until(Duration::from_secs(10), || async {
        reason(&gw, "echo count").await.contains("label second")
    })
    .await;
    for _ in 0..5 {
        assert!(
            reason(&gw, "echo count")
                .await
                .contains(&format!("{FRESH}, label second"))
        );
    }
    // A new file of the same plugin: a fresh instance of it, configured once.
    let file = plugins_dir(&gw).join("probe.wasm");
    std::fs::copy(test_plugin("call_counter"), &file).unwrap();
    let (status, report) = gw.post("/v1/plugins/reload", json!(null)).await;
    assert!(status.is_success(), "{report}");
    assert!(
        reason(&gw, "echo count")
            .await
            .contains(&format!("{FRESH}, label second"))
    );
}
