//! Builds a real kube-rs client from the fake's kubeconfig, the way the gateway does.

use std::time::Duration;

use fake_apiserver::FakeApiServer;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

/// The namespace every test works in.
pub const NS: &str = "dev";

pub async fn client(server: &FakeApiServer) -> Client {
    let kubeconfig = Kubeconfig::from_yaml(&server.kubeconfig(NS)).expect("kubeconfig parses");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await.expect("config");
    Client::try_from(config).expect("client")
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
