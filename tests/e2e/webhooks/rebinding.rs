//! DNS rebinding: a name that resolves to a public address when the subscription is written and to
//! loopback when a delivery connects is refused at the connection, and nothing is sent. The name
//! is resolved through the system resolver, so the test points it with a line of its own in
//! `/etc/hosts` (CI runs as root), which it removes again.

use std::time::Duration;

use serde_json::json;

use super::{Receiver, subscribe};
use crate::common::{Db, Gateway, wait_until};

const HOSTS: &str = "/etc/hosts";

/// A name of this test's own in `/etc/hosts`, removed when dropped.
struct HostsEntry {
    name: String,
}

impl HostsEntry {
    fn new() -> HostsEntry {
        HostsEntry {
            name: format!("rdev-rebind-{}.example.net", std::process::id()),
        }
    }

    /// Points the name at `ip` (replacing what it pointed at).
    fn point_at(&self, ip: &str) {
        let mut lines = self.others();
        lines.push(format!("{ip} {}", self.name));
        std::fs::write(HOSTS, lines.join("\n") + "\n").expect("the tests run as root and may edit /etc/hosts");
    }

    fn others(&self) -> Vec<String> {
        let text = std::fs::read_to_string(HOSTS).unwrap_or_default();
        text.lines()
            .filter(|l| !l.split_whitespace().skip(1).any(|n| n == self.name))
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for HostsEntry {
    fn drop(&mut self) {
        let _ = std::fs::write(HOSTS, self.others().join("\n") + "\n");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_rebound_to_loopback_after_registration_is_refused_at_connect() {
    let settings = "[webhooks]\nallow_http = true\npoll_interval_ms = 50\nretry_schedule_secs = [0.2, 0.2]\n";
    let gw = Gateway::start_with_plugins(Db::Sqlite, settings).await;
    let (receiver, url) = Receiver::start(&[]).await;
    let port = url.rsplit(':').next().unwrap().trim_end_matches("/hook");
    let host = HostsEntry::new();
    host.point_at("93.184.215.14");
    let target = format!("http://{}:{port}/hook", host.name);
    let (id, _) = subscribe(&gw, json!({"url": target, "events": ["webhook.test"]})).await;
    host.point_at("127.0.0.1");
    gw.post(&format!("/v1/webhooks/{id}/test"), json!({})).await;
    wait_until(Duration::from_secs(60), || async {
        let (_, page) = gw.get(&format!("/v1/webhooks/{id}/deliveries")).await;
        page["deliveries"][0]["state"] == "failed"
    })
    .await;
    let (_, page) = gw.get(&format!("/v1/webhooks/{id}/deliveries")).await;
    let delivery = page["deliveries"][0]["id"].as_str().unwrap().to_owned();
    let (_, detail) = gw.get(&format!("/v1/webhooks/{id}/deliveries/{delivery}")).await;
    let log = detail["attempt_log"].as_array().unwrap();
    assert!(
        !log.is_empty() && log.iter().all(|a| a["error_class"] == "address_refused"),
        "{detail}"
    );
    assert!(receiver.got().is_empty(), "a rebound name reached loopback");

    // Registration refuses the name now that it resolves to loopback.
    let (status, body) = gw
        .post("/v1/webhooks", json!({"url": target, "events": ["webhook.test"]}))
        .await;
    assert_eq!(status, reqwest::StatusCode::UNPROCESSABLE_ENTITY, "{body}");
}
