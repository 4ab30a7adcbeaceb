//! Builds a real kube-rs client from the fake's kubeconfig, the way the gateway does.

use std::time::Duration;

use fake_apiserver::FakeApiServer;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

/// The namespace every test works in.
pub const NS: &str = "dev";

pub async fn client(server: &FakeApiServer) -> Client {
    Client::try_from(config(server).await).expect("client")
}

/// kube-rs's config for the fake. Note `default_retry`: kube retries 429/503/504 up to 15 times
/// with exponential backoff, so during an outage a request can take minutes to fail.
pub async fn config(server: &FakeApiServer) -> Config {
    let kubeconfig = Kubeconfig::from_yaml(&server.kubeconfig(NS)).expect("kubeconfig parses");
    Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("config")
}

/// Waits up to `limit` for `check` to hold, polling every 10 ms.
pub async fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    check()
}
