//! Limits as a client meets them: rate limits per key tier with their headers, failed
//! authentications per client address, bounded queues and streams, and the tier of a key.

use std::net::IpAddr;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::sse::SseStream;
use crate::common::{Db, Gateway, Reply, send, wait_until};

/// A tier that refills so slowly that no test sees a cell come back: bursts are exact.
const SLOW_TIERS: &str = "[limits.tiers.default]\nrequests_per_second = 0.001\nburst = 20\n\
                          [limits.tiers.batch]\nrequests_per_second = 0.001\nburst = 7\n";

fn number(reply: &Reply, header: &str) -> u64 {
    reply
        .header(header)
        .parse()
        .unwrap_or_else(|_| panic!("{header} is a number: {reply:?}"))
}

async fn projects(gw: &Gateway, token: &str) -> Reply {
    send(gw.request(Method::GET, "/v1/projects").bearer_auth(token)).await
}

/// A client whose connections come from `source` (any 127/8 address reaches the gateway).
fn client_from(source: &str) -> reqwest::Client {
    let address: IpAddr = source.parse().unwrap();
    rdev::install_tls_provider();
    reqwest::Client::builder().local_address(address).build().unwrap()
}

async fn metric(gw: &Gateway, name: &str) -> f64 {
    let text = send(gw.request(Method::GET, "/metrics")).await.body;
    let text = text.as_str().expect("metrics are text").to_owned();
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

async fn a_burst_of_five_times_the_limit_gets_exactly_the_excess_refused(db: Db) {
    let gw = Gateway::start(db, SLOW_TIERS).await;
    let (_, token) = gw.key(json!({"name": "hammer", "scopes": ["projects:read"]})).await;
    let (_, other) = gw.key(json!({"name": "bystander", "scopes": ["projects:read"]})).await;
    let replies = futures::future::join_all((0..100).map(|_| projects(&gw, &token))).await;
    let refused: Vec<&Reply> = replies
        .iter()
        .filter(|r| r.status == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    let served = replies.iter().filter(|r| r.status == StatusCode::OK).count();
    assert_eq!((served, refused.len()), (20, 80), "the burst is 20");
    for reply in &refused {
        assert_eq!(reply.body["error"]["code"], "rate_limited", "{reply:?}");
        assert!(reply.body["error"]["request_id"].is_string(), "{reply:?}");
        assert!(number(reply, "retry-after") >= 1, "{reply:?}");
        assert_eq!(number(reply, "x-ratelimit-remaining"), 0);
        assert_eq!(number(reply, "x-ratelimit-limit"), 20);
    }
    let bystander = projects(&gw, &other).await;
    assert_eq!(bystander.status, StatusCode::OK, "another key has its own budget");
    assert_eq!(number(&bystander, "x-ratelimit-remaining"), 19);
}

async fn the_headers_count_down_and_reset(db: Db) {
    let tiers = "[limits.tiers.default]\nrequests_per_second = 2.0\nburst = 4\n";
    let gw = Gateway::start(db, tiers).await;
    let (_, token) = gw.key(json!({"name": "counter", "scopes": ["projects:read"]})).await;
    let mut remaining = Vec::new();
    let mut last = projects(&gw, &token).await;
    remaining.push(number(&last, "x-ratelimit-remaining"));
    while last.status == StatusCode::OK {
        last = projects(&gw, &token).await;
        remaining.push(number(&last, "x-ratelimit-remaining"));
    }
    assert!(
        remaining.windows(2).all(|w| w[1] <= w[0]) && remaining.last() == Some(&0),
        "{remaining:?}"
    );
    assert_eq!(number(&last, "x-ratelimit-limit"), 4);
    let reset = number(&last, "x-ratelimit-reset");
    assert!(
        (1..=2).contains(&reset),
        "4 cells at 2 per second refill within 2 s: {reset}"
    );
    tokio::time::sleep(Duration::from_secs(reset)).await;
    let refilled = projects(&gw, &token).await;
    assert_eq!(refilled.status, StatusCode::OK);
    assert_eq!(
        number(&refilled, "x-ratelimit-remaining"),
        3,
        "full again after the reset"
    );
}

async fn a_key_gets_the_limits_of_its_tier(db: Db) {
    let gw = Gateway::start(db, SLOW_TIERS).await;
    let unknown = json!({"name": "x", "scopes": ["projects:read"], "rate_limit_tier": "gold"});
    let (status, body) = gw.post("/v1/keys", unknown).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["fields"][0]["field"], "rate_limit_tier");
    let (status, created) = gw
        .post(
            "/v1/keys",
            json!({"name": "etl", "scopes": ["projects:read"], "rate_limit_tier": "batch"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["rate_limit_tier"], "batch");
    let token = created["token"].as_str().unwrap();
    let first = projects(&gw, token).await;
    assert_eq!(number(&first, "x-ratelimit-limit"), 7);
    let (_, shown) = gw.get(&format!("/v1/keys/{}", created["id"].as_str().unwrap())).await;
    assert_eq!(shown["rate_limit_tier"], "batch");
    let (_, plain) = gw
        .post("/v1/keys", json!({"name": "p", "scopes": ["projects:read"]}))
        .await;
    assert_eq!(plain["rate_limit_tier"], "default");
    let (_, runner) = gw.key(json!({"name": "runner", "scopes": ["commands:run"]})).await;
    let by_non_admin = gw
        .call(
            Method::POST,
            "/v1/keys",
            &runner,
            Some(json!({"name": "y", "scopes": ["projects:read"], "rate_limit_tier": "batch"})),
        )
        .await;
    assert_eq!(by_non_admin.0, StatusCode::FORBIDDEN, "only admins give tiers");
}

/// The default tier, as documented, is hit by one client hammering in a loop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_hammering_hits_the_default_tier() {
    let gw = Gateway::start(Db::Sqlite, "limits.enabled = true\n").await;
    let (_, token) = gw.key(json!({"name": "loop", "scopes": ["projects:read"]})).await;
    let first = projects(&gw, &token).await;
    assert_eq!(number(&first, "x-ratelimit-limit"), 300);
    let mut sent = 1;
    loop {
        let replies = futures::future::join_all((0..32).map(|_| projects(&gw, &token))).await;
        sent += replies.len();
        if replies.iter().any(|r| r.status == StatusCode::TOO_MANY_REQUESTS) {
            break;
        }
        assert!(sent < 20_000, "20,000 requests in a loop were all served");
    }
    assert!(sent > 300, "the burst of 300 is served first: {sent}");
}

async fn failed_authentications_are_limited_per_address_without_a_read_each(db: Db) {
    let gw = Gateway::start(db, "[limits]\nfailed_auth_per_minute = 30\nfailed_auth_burst = 20\n").await;
    let (_, valid) = gw.key(json!({"name": "good", "scopes": ["projects:read"]})).await;
    let reads_before = metric(&gw, "rdev_key_store_reads_total").await;
    let attacker = client_from("127.0.0.2");
    let guess = |i: usize| {
        let token = format!("rdev_key_{i:016x}_{}", "0".repeat(64));
        send(attacker.get(format!("{}/v1/projects", gw.url)).bearer_auth(token))
    };
    let mut replies = Vec::new();
    for chunk in 0..20 {
        replies.extend(futures::future::join_all((chunk * 50..chunk * 50 + 50).map(guess)).await);
    }
    let unauthorized = replies.iter().filter(|r| r.status == StatusCode::UNAUTHORIZED).count();
    let limited: Vec<&Reply> = replies
        .iter()
        .filter(|r| r.status == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    assert_eq!(unauthorized + limited.len(), 1000);
    assert!(
        (20..100).contains(&unauthorized),
        "20 failures, then one per 2 s: {unauthorized}"
    );
    assert!(
        limited
            .iter()
            .all(|r| r.body["error"]["code"] == "rate_limited" && number(r, "retry-after") >= 1)
    );
    let reads = metric(&gw, "rdev_key_store_reads_total").await - reads_before;
    assert!(
        reads <= unauthorized as f64,
        "{reads} key reads for {unauthorized} guesses looked at"
    );
    let blocked = send(attacker.get(format!("{}/v1/projects", gw.url)).bearer_auth(&valid)).await;
    assert_eq!(
        blocked.status,
        StatusCode::TOO_MANY_REQUESTS,
        "the address is refused, whatever its token"
    );
    let elsewhere = projects(&gw, &valid).await;
    assert_eq!(
        elsewhere.status,
        StatusCode::OK,
        "a valid key from another address is unaffected"
    );
}

async fn an_unknown_key_id_is_read_from_the_store_once(db: Db) {
    let gw = Gateway::start(db, "").await;
    let token = format!("rdev_key_00000000000000aa_{}", "1".repeat(64));
    let before = metric(&gw, "rdev_key_store_reads_total").await;
    for _ in 0..10 {
        let reply = projects(&gw, &token).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert!(!reply.header("x-ratelimit-remaining").is_empty(), "{reply:?}");
    }
    assert_eq!(metric(&gw, "rdev_key_store_reads_total").await - before, 1.0);
}

async fn a_full_queue_answers_429(db: Db) {
    let config = "[limits.tiers.default]\nmax_queued_per_project = 3\n[projects.demo]\nmax_concurrent_commands = 1\n";
    let gw = Gateway::start(db, config).await;
    let holder = gw.run("demo", json!({"kind": "shell", "script": "sleep 600"})).await;
    gw.wait_state(holder["id"].as_str().unwrap(), "running").await;
    for _ in 0..3 {
        assert_eq!(
            gw.run_status("demo", json!({"kind": "shell", "script": "true"})).await,
            StatusCode::ACCEPTED
        );
    }
    let full = send(
        gw.request(Method::POST, "/v1/projects/demo/commands")
            .bearer_auth(&gw.admin_token)
            .json(&json!({"kind": "shell", "script": "true"})),
    )
    .await;
    assert_eq!(full.status, StatusCode::TOO_MANY_REQUESTS, "{full:?}");
    assert_eq!(full.body["error"]["code"], "queue_full");
    assert!(number(&full, "retry-after") >= 1);
    let (_, listed) = gw.get("/v1/projects/demo/commands?state=queued").await;
    assert_eq!(
        listed["commands"].as_array().unwrap().len(),
        3,
        "the refused command was not queued"
    );
    let id = holder["id"].as_str().unwrap();
    gw.post(&format!("/v1/commands/{id}/cancel"), json!({})).await;
    gw.wait_state(id, "cancelled").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keys_command_rate_is_limited() {
    let gw = Gateway::start(Db::Sqlite, "[limits.tiers.default]\ncommands_per_minute = 2\n").await;
    for _ in 0..2 {
        assert_eq!(
            gw.run_status("demo", json!({"kind": "shell", "script": "true"})).await,
            StatusCode::ACCEPTED
        );
    }
    let third = gw
        .post("/v1/projects/demo/commands", json!({"kind": "shell", "script": "true"}))
        .await;
    assert_eq!(third.0, StatusCode::TOO_MANY_REQUESTS, "{}", third.1);
    assert!(
        third.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("2 commands per minute")
    );
    assert_eq!(
        gw.get("/v1/projects").await.0,
        StatusCode::OK,
        "other requests still pass"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fifty_first_stream_of_a_key_capped_at_fifty_is_refused() {
    let gw = Gateway::start(Db::Sqlite, "[limits.tiers.default]\nmax_streams = 50\n").await;
    let cmd = gw.run("demo", json!({"kind": "shell", "script": "sleep 600"})).await;
    let id = cmd["id"].as_str().unwrap().to_owned();
    let url = format!("{}/v1/commands/{id}/stream", gw.url);
    let mut streams = Vec::new();
    for _ in 0..50 {
        let stream = SseStream::open(&url, &gw.admin_token, None).await;
        assert_eq!(stream.status, StatusCode::OK);
        streams.push(stream);
    }
    let refused = send(
        gw.request(Method::GET, &format!("/v1/commands/{id}/stream"))
            .bearer_auth(&gw.admin_token),
    )
    .await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "{refused:?}");
    assert_eq!(refused.body["error"]["code"], "too_many_streams");
    let (_, other) = gw.key(json!({"name": "reader", "scopes": ["commands:read"]})).await;
    assert_eq!(
        SseStream::open(&url, &other, None).await.status,
        StatusCode::OK,
        "another key's cap is its own"
    );
    // The gateway notices a client gone at its next write (a heartbeat within 10 s).
    streams.pop();
    wait_until(Duration::from_secs(60), || async {
        SseStream::open(&url, &gw.admin_token, None).await.status == StatusCode::OK
    })
    .await;
    gw.post(&format!("/v1/commands/{id}/cancel"), json!({})).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_can_be_turned_off() {
    let gw = Gateway::start(Db::Sqlite, "limits.enabled = false\n").await;
    let reply = projects(&gw, &gw.admin_token).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.header("x-ratelimit-limit").is_empty(), "{reply:?}");
}

/// With two replicas on one database each grants half the tier's rate and its whole burst:
/// cluster-wide a key gets at most the tier's rate plus one burst per replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_a_tiers_rate() {
    let gw = Gateway::start(
        Db::Postgres,
        "[limits.tiers.default]\nrequests_per_second = 1.0\nburst = 4\n",
    )
    .await;
    let (_, token) = gw.key(json!({"name": "shared", "scopes": ["projects:read"]})).await;
    let alone = projects(&gw, &token).await;
    assert_eq!(number(&alone, "x-ratelimit-reset"), 1, "one cell at 1 per second");
    let peer = gw.start_replica().await;
    wait_until(Duration::from_secs(30), || async {
        let ready: Value = send(gw.client.get(format!("{}/ready", gw.url))).await.body;
        ready["replicas_live"] == 2
    })
    .await;
    let (_, fresh) = gw.key(json!({"name": "fresh", "scopes": ["projects:read"]})).await;
    let shared = projects(&gw, &fresh).await;
    assert_eq!(
        number(&shared, "x-ratelimit-reset"),
        2,
        "one cell at half a cell per second"
    );
    let on_peer = projects(&peer, &fresh).await;
    assert_eq!(number(&on_peer, "x-ratelimit-limit"), 4, "each replica keeps the burst");
}

crate::on_both_databases!(
    a_burst_of_five_times_the_limit_gets_exactly_the_excess_refused,
    the_headers_count_down_and_reset,
    a_key_gets_the_limits_of_its_tier,
    failed_authentications_are_limited_per_address_without_a_read_each,
    an_unknown_key_id_is_read_from_the_store_once,
    a_full_queue_answers_429,
);
