//! Lists, gets and watches through the real kube-rs client and kube-runtime watcher.

#[path = "support/client.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use fake_apiserver::{FakeApiServer, PodSpec};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{ListParams, WatchEvent, WatchParams};
use kube::runtime::watcher::{self, Event, watcher};
use kube::{Api, Client, ResourceExt};
use support::{NS, client, config};

const SECOND: Duration = Duration::from_secs(1);

fn data(value: &str) -> BTreeMap<String, String> {
    BTreeMap::from([("key".to_string(), value.to_string())])
}

#[tokio::test]
async fn lists_pods_by_label_selector() {
    let server = FakeApiServer::start().await;
    server.create_pod(NS, PodSpec::new("web-0").label("app", "web").container("main"));
    server.create_pod(NS, PodSpec::new("db-0").label("app", "db").container("main"));
    server.create_pod("other", PodSpec::new("web-1").label("app", "web").container("main"));
    let pods: Api<Pod> = Api::default_namespaced(client(&server).await);

    let web = pods.list(&ListParams::default().labels("app=web")).await.unwrap();
    let names: Vec<String> = web.items.iter().map(|p| p.name_any()).collect();
    assert_eq!(names, ["web-0"]);
    assert!(
        web.metadata
            .resource_version
            .is_some_and(|rv| rv.parse::<u64>().is_ok())
    );
    let pod = &web.items[0];
    assert_eq!(pod.namespace().as_deref(), Some(NS));
    assert!(pod.uid().is_some() && pod.creation_timestamp().is_some());
    let status = pod.status.as_ref().unwrap();
    assert_eq!(status.phase.as_deref(), Some("Running"));
    assert!(status.pod_ip.is_some());

    let others = pods
        .list(&ListParams::default().labels("app notin (web),app"))
        .await
        .unwrap();
    assert_eq!(others.items.len(), 1);
    let everywhere: Api<Pod> = Api::all(client(&server).await);
    assert_eq!(
        everywhere
            .list(&ListParams::default().labels("app=web"))
            .await
            .unwrap()
            .items
            .len(),
        2
    );
}

#[tokio::test]
async fn get_of_a_missing_object_is_a_404_status() {
    let server = FakeApiServer::start().await;
    let pods: Api<Pod> = Api::default_namespaced(client(&server).await);
    let Err(kube::Error::Api(status)) = pods.get("nope").await else {
        panic!("expected an API error")
    };
    assert_eq!((status.code, status.reason.as_str()), (404, "NotFound"));
    assert_eq!(status.message, "pods \"nope\" not found");
}

#[tokio::test]
async fn watcher_sees_a_pod_created_after_start_and_its_deletion() {
    let server = FakeApiServer::start().await;
    let pods: Api<Pod> = Api::default_namespaced(client(&server).await);
    let mut events = watcher(pods, watcher::Config::default()).boxed();
    assert!(matches!(next(&mut events).await, Event::Init));
    assert!(matches!(next(&mut events).await, Event::InitDone));

    server.create_pod(NS, PodSpec::new("web-0").container("main"));
    assert!(matches!(next(&mut events).await, Event::Apply(pod) if pod.name_any() == "web-0"));
    server.delete_pod(NS, "web-0");
    assert!(matches!(next(&mut events).await, Event::Delete(pod) if pod.name_any() == "web-0"));
}

#[tokio::test]
async fn streaming_list_watcher_gets_current_pods_then_changes() {
    let server = FakeApiServer::start().await;
    server.create_pod(NS, PodSpec::new("web-0").container("main"));
    let pods: Api<Pod> = Api::default_namespaced(client(&server).await);
    let mut events = watcher(pods, watcher::Config::default().streaming_lists()).boxed();
    assert!(matches!(next(&mut events).await, Event::Init));
    assert!(matches!(next(&mut events).await, Event::InitApply(pod) if pod.name_any() == "web-0"));
    assert!(matches!(next(&mut events).await, Event::InitDone));
    server.update_pod(NS, PodSpec::new("web-0").label("v", "2").container("main"));
    assert!(matches!(next(&mut events).await, Event::Apply(pod) if pod.labels()["v"] == "2"));
}

#[tokio::test]
async fn label_watch_sees_objects_enter_and_leave_its_selection() {
    let server = FakeApiServer::start().await;
    server.create_pod(NS, PodSpec::new("web-0").container("main"));
    let pods: Api<Pod> = Api::default_namespaced(client(&server).await);
    let rv = pods
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut stream = pods
        .watch(&WatchParams::default().labels("app=web"), &rv)
        .await
        .unwrap()
        .boxed();

    server.update_pod(NS, PodSpec::new("web-0").label("app", "web").container("main"));
    assert!(matches!(next_raw(&mut stream).await, WatchEvent::Added(_)));
    server.update_pod(
        NS,
        PodSpec::new("web-0")
            .label("app", "web")
            .annotation("a", "b")
            .container("main"),
    );
    assert!(matches!(next_raw(&mut stream).await, WatchEvent::Modified(_)));
    server.update_pod(NS, PodSpec::new("web-0").container("main"));
    let WatchEvent::Deleted(gone) = next_raw(&mut stream).await else {
        panic!("expected DELETED")
    };
    // The last matching version, stamped with the resourceVersion of the change that unselected it.
    assert_eq!(gone.labels()["app"], "web");
    assert!(gone.resource_version().unwrap().parse::<u64>().unwrap() > rv.parse().unwrap());
}

#[tokio::test]
async fn config_map_get_and_watch_by_field_selector() {
    let server = FakeApiServer::start().await;
    server.set_config_map(NS, "a", data("1"));
    let maps: Api<ConfigMap> = Api::default_namespaced(client(&server).await);
    assert_eq!(maps.get("a").await.unwrap().data, Some(data("1")));

    let config = watcher::Config::default().fields("metadata.name=a");
    let mut events = watcher(maps, config).boxed();
    assert!(matches!(next(&mut events).await, Event::Init));
    assert!(matches!(next(&mut events).await, Event::InitApply(map) if map.name_any() == "a"));
    assert!(matches!(next(&mut events).await, Event::InitDone));
    server.set_config_map(NS, "b", data("ignored"));
    server.set_config_map(NS, "a", data("2"));
    assert!(matches!(next(&mut events).await, Event::Apply(map) if map.data == Some(data("2"))));
    server.delete_config_map(NS, "a");
    assert!(matches!(next(&mut events).await, Event::Delete(map) if map.name_any() == "a"));
}

#[tokio::test]
async fn outage_fails_requests_with_503_and_ends_watches() {
    let server = FakeApiServer::start().await;
    let mut config = config(&server).await;
    config.default_retry = false;
    let pods: Api<Pod> = Api::default_namespaced(Client::try_from(config).unwrap());
    let mut stream = pods.watch(&WatchParams::default(), "0").await.unwrap().boxed();
    let before = server.request_count();

    server.set_down(true);
    assert!(
        tokio::time::timeout(SECOND, stream.next()).await.unwrap().is_none(),
        "watch should end"
    );
    let Err(kube::Error::Api(status)) = pods.list(&ListParams::default()).await else {
        panic!("expected 503")
    };
    assert_eq!((status.code, status.reason.as_str()), (503, "ServiceUnavailable"));
    assert_eq!(server.request_count(), before + 1);

    server.set_down(false);
    assert!(pods.list(&ListParams::default()).await.unwrap().items.is_empty());
}

#[tokio::test]
async fn kube_default_retry_rides_out_a_short_outage() {
    let server = FakeApiServer::start().await;
    let pods: Api<Pod> = Api::default_namespaced(client(&server).await);
    server.set_down(true);
    let list = tokio::spawn(async move { pods.list(&ListParams::default()).await });
    assert!(
        support::eventually(SECOND, || server.request_count() >= 3).await,
        "kube retries the 503"
    );
    server.set_down(false);
    let listed = tokio::time::timeout(5 * SECOND, list)
        .await
        .expect("retried before long")
        .unwrap();
    assert!(listed.unwrap().items.is_empty());
}

async fn next<K: Clone>(events: &mut (impl futures::Stream<Item = watcher::Result<Event<K>>> + Unpin)) -> Event<K> {
    let event = tokio::time::timeout(SECOND, events.try_next())
        .await
        .expect("an event within 1 s");
    event.unwrap().expect("stream still open")
}

async fn next_raw<K>(events: &mut (impl futures::Stream<Item = kube::Result<WatchEvent<K>>> + Unpin)) -> WatchEvent<K> {
    let event = tokio::time::timeout(SECOND, events.try_next())
        .await
        .expect("an event within 1 s");
    event.unwrap().expect("stream still open")
}
