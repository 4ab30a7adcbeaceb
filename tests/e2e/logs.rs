//! The harness keeps every gateway's stderr and checks it when the gateway is dropped (see
//! `common::logs`); this proves the lines it checks are the gateway's.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::common::{Db, Gateway, send, wait_until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_harness_checks_the_lines_a_refused_request_logs() {
    let gw = Gateway::start(Db::Sqlite, "").await;
    let refused = send(gw.request(Method::GET, "/v1/projects").bearer_auth("rdev_not_a_token")).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    let request_id = refused.header("x-request-id").to_owned();
    wait_until(Duration::from_secs(20), || {
        let seen = gw.logs.lines().iter().any(|line| {
            let fields: Value = serde_json::from_str(line).unwrap_or_default();
            fields["message"] == "authentication refused" && fields["request_id"] == request_id.as_str()
        });
        std::future::ready(seen)
    })
    .await;
    let lines = gw.logs.lines();
    assert!(
        lines.iter().all(|l| !l.contains(&gw.admin_token)),
        "the first-start key goes to stdout only"
    );
}
