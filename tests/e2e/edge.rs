//! The HTTP edge against hostile clients: read timeouts, the connection cap and its shed mode,
//! a descriptor limit, errors answered below the router, JSON bodies that are not objects, and
//! IPv4-mapped peers. Most cases speak raw HTTP/1.1 over a socket, as such clients do.

mod limited;
mod raw;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::common::{Db, Gateway, wait_until};
use raw::{RawReply, addr, exchange, read_reply};

/// Sends `bytes` one at a time, `every` apart, then waits; stops when the server closes.
fn trickle(mut writer: OwnedWriteHalf, bytes: Vec<u8>, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        for b in bytes {
            if writer.write_all(&[b]).await.is_err() {
                return;
            }
            tokio::time::sleep(every).await;
        }
        std::future::pending::<()>().await;
    })
}

fn slow_head(len: usize) -> Vec<u8> {
    format!("GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: {}", "a".repeat(len)).into_bytes()
}

async fn key_ids(gw: &Gateway) -> Vec<Value> {
    let (_, keys) = gw.get("/v1/keys").await;
    keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].clone())
        .collect()
}

fn assert_raw_envelope(reply: &RawReply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "{reply:?}");
    assert_eq!(reply.header("content-type"), "application/json", "{reply:?}");
    let body: Value = serde_json::from_str(&reply.body).unwrap_or_else(|_| panic!("not JSON: {reply:?}"));
    assert_eq!(body["error"]["code"], code, "{reply:?}");
    assert!(
        !body["error"]["message"].as_str().unwrap_or_default().is_empty(),
        "{reply:?}"
    );
    let id = body["error"]["request_id"].as_str().unwrap_or_default();
    assert!(!id.is_empty(), "{reply:?}");
    assert_eq!(reply.header("x-request-id"), id, "{reply:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickling_header_is_cut_after_the_header_timeout() {
    let gw = Gateway::start(Db::Sqlite, "[http]\nheader_timeout_secs = 1\n").await;
    let (mut reader, writer) = TcpStream::connect(addr(&gw)).await.unwrap().into_split();
    // ~15 s of trickling, far beyond the 1 s timeout.
    let sender = trickle(writer, slow_head(40), Duration::from_millis(200));
    let reply = read_reply(&mut reader, Duration::from_secs(30)).await;
    assert_raw_envelope(&reply, 408, "header_timeout");
    assert_eq!(reply.header("connection"), "close");
    assert!(!sender.is_finished(), "the head was cut while it was still trickling");
    sender.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_after_the_idle_timeout() {
    let gw = Gateway::start(Db::Sqlite, "[http]\nidle_timeout_secs = 1\n").await;
    let mut fresh = TcpStream::connect(addr(&gw)).await.unwrap();
    let nothing = read_reply(&mut fresh, Duration::from_secs(30)).await;
    assert_eq!(
        nothing.raw, "",
        "a connection that never sent a request is closed without an answer"
    );

    let mut used = TcpStream::connect(addr(&gw)).await.unwrap();
    used.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let reply = read_reply(&mut used, Duration::from_secs(30)).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        reply.header("connection"),
        "",
        "kept alive after the answer, closed once idle: {reply:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_body_is_answered_408_and_changes_nothing() {
    let gw = Gateway::start(Db::Sqlite, "[http]\nbody_timeout_secs = 1\n").await;
    let before = key_ids(&gw).await;
    let head = format!(
        "POST /v1/keys HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n",
        gw.admin_token
    );
    let (mut reader, mut writer) = TcpStream::connect(addr(&gw)).await.unwrap().into_split();
    writer.write_all(head.as_bytes()).await.unwrap();
    let body = br#"{"name": "slow", "scopes": ["admin"]"#.to_vec();
    let sender = trickle(writer, body, Duration::from_millis(500));
    let reply = read_reply(&mut reader, Duration::from_secs(30)).await;
    assert_raw_envelope(&reply, 408, "body_timeout");
    sender.abort();
    assert_eq!(key_ids(&gw).await, before, "no key was created");
}

/// Open sockets that are either idle or trickle a request head at a byte per second.
struct Crowd {
    readers: Vec<OwnedReadHalf>,
    idle: Vec<OwnedWriteHalf>,
    senders: Vec<tokio::task::JoinHandle<()>>,
}

impl Crowd {
    async fn gather(address: &str, count: usize, trickling: bool) -> Crowd {
        let mut crowd = Crowd {
            readers: Vec::new(),
            idle: Vec::new(),
            senders: Vec::new(),
        };
        for i in 0..count {
            let Ok(stream) = TcpStream::connect(address).await else {
                continue;
            };
            let (reader, writer) = stream.into_split();
            crowd.readers.push(reader);
            if trickling && i % 2 == 1 {
                crowd
                    .senders
                    .push(trickle(writer, slow_head(200), Duration::from_secs(1)));
            } else {
                crowd.idle.push(writer);
            }
        }
        crowd
    }
}

impl Drop for Crowd {
    fn drop(&mut self) {
        self.senders.iter().for_each(tokio::task::JoinHandle::abort);
    }
}

async fn assert_served(url: &str, token: &str, what: &str) {
    rdev::install_tls_provider();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    for path in ["/health", "/v1/projects"] {
        let reply = client
            .get(format!("{url}{path}"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{path} not served beside {what}: {e}"));
        assert_eq!(reply.status(), StatusCode::OK, "{path} beside {what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_idle_and_trickling_connections_do_not_stop_a_client() {
    let gw = Gateway::start(Db::Sqlite, "").await;
    let crowd = Crowd::gather(&addr(&gw), 1000, true).await;
    assert_eq!(crowd.readers.len(), 1000);
    assert_served(&gw.url, &gw.admin_token, "1,000 idle and trickling connections").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_under_a_256_descriptor_limit_do_not_lock_clients_out() {
    let Some(gw) = limited::Limited::start(256) else {
        eprintln!("skipped: prlimit (util-linux) is not installed");
        return;
    };
    let crowd = Crowd::gather(&gw.addr(), 300, false).await;
    assert_served(&gw.url, &gw.token, "300 idle connections").await;
    drop(crowd);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_make_room_for_new_clients_at_the_cap() {
    let gw = Gateway::start(Db::Sqlite, "[http]\nmax_connections = 2\noverflow_connections = 1\n").await;
    let mut first = TcpStream::connect(addr(&gw)).await.unwrap();
    let _second = TcpStream::connect(addr(&gw)).await.unwrap();
    assert_served(&gw.url, &gw.admin_token, "two idle connections at a cap of two").await;
    let evicted = read_reply(&mut first, Duration::from_secs(30)).await;
    assert_eq!(evicted.raw, "", "the oldest idle connection was closed to make room");
}

/// Holds `count` connections busy with an output stream of a long-running command.
async fn busy_streams(gw: &Gateway, count: usize) -> Vec<reqwest::Response> {
    let id = gw.shell("demo", "sleep 60").await;
    gw.wait_state(&id, "running").await;
    let mut streams = Vec::new();
    for _ in 0..count {
        let client = rdev::http_client();
        let stream = client
            .get(format!("{}/v1/commands/{id}/stream", gw.url))
            .bearer_auth(&gw.admin_token)
            .send()
            .await
            .unwrap();
        assert_eq!(stream.status(), StatusCode::OK);
        streams.push(stream);
    }
    streams
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_cap_clients_get_503_and_probes_still_answer() {
    let gw = Gateway::start(Db::Sqlite, "[http]\nmax_connections = 3\noverflow_connections = 2\n").await;
    let streams = busy_streams(&gw, 3).await;
    let request = format!(
        "GET /v1/projects HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n",
        gw.admin_token
    );
    let shed = exchange(&addr(&gw), request.as_bytes()).await;
    assert_raw_envelope(&shed, 503, "unavailable");
    assert_eq!(shed.header("retry-after"), "1", "{shed:?}");
    assert_eq!(shed.header("connection"), "close", "{shed:?}");
    for probe in ["/health", "/ready"] {
        // Read until closed: a shed connection serves one request.
        let reply = exchange(
            &addr(&gw),
            format!("GET {probe} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
        )
        .await;
        assert_eq!(reply.status, 200, "{probe} under the cap: {reply:?}");
    }
    drop(streams);
    wait_until(Duration::from_secs(20), || async {
        let client = rdev::http_client();
        let reply = client
            .get(format!("{}/v1/projects", gw.url))
            .bearer_auth(&gw.admin_token)
            .send()
            .await;
        reply.is_ok_and(|r| r.status() == StatusCode::OK)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_below_the_router_carry_the_envelope() {
    let gw = Gateway::start(Db::Sqlite, "").await;
    let many_headers: String = (0..120).map(|i| format!("X-Header-{i}: v\r\n")).collect();
    let cases = [
        (
            format!("GET /health HTTP/1.1\r\nHost: x\r\n{many_headers}\r\n"),
            431,
            "headers_too_large",
        ),
        (
            format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(70_000)),
            414,
            "uri_too_long",
        ),
        (
            "POST /v1/keys HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n".to_owned(),
            400,
            "bad_request",
        ),
        (
            "POST /v1/keys HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n".to_owned(),
            400,
            "bad_request",
        ),
        ("NOT A REQUEST\r\n\r\n".to_owned(), 400, "bad_request"),
    ];
    for (request, status, code) in cases {
        let reply = exchange(&addr(&gw), request.as_bytes()).await;
        assert_raw_envelope(&reply, status, code);
        assert_eq!(reply.header("connection"), "close", "{reply:?}");
    }
    assert_eq!(gw.get("/health").await.0, StatusCode::OK, "the gateway is unharmed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_array_bodies_are_refused_and_change_nothing() {
    let gw = Gateway::start(Db::Sqlite, "").await;
    gw.project("demo");
    let keys_before = key_ids(&gw).await;
    let cases = [
        (Method::POST, "/v1/keys", r#"["name", ["admin"]]"#),
        (
            Method::POST,
            "/v1/projects/demo/commands",
            r#" ["shell", "touch array-ran"]"#,
        ),
        (Method::PUT, "/v1/projects/demo/claude/commands/x", r#"["content"]"#),
    ];
    for (method, path, body) in cases {
        let reply = crate::common::send(
            gw.request(method.clone(), path)
                .bearer_auth(&gw.admin_token)
                .header("content-type", "application/json")
                .body(body),
        )
        .await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{method} {path}: {:?}",
            reply.body
        );
        assert_eq!(reply.body["error"]["code"], "invalid_request", "{method} {path}");
        assert_eq!(
            reply.header("x-request-id"),
            reply.body["error"]["request_id"].as_str().unwrap()
        );
    }
    assert_eq!(key_ids(&gw).await, keys_before, "no key was created");
    assert_eq!(
        gw.get("/v1/projects/demo/claude/commands/x").await.0,
        StatusCode::NOT_FOUND
    );
    let (_, commands) = gw.get("/v1/projects/demo/commands").await;
    assert_eq!(commands["commands"], json!([]), "no command was started");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mapped_ipv4_peers_match_ipv4_rules() {
    let mut gw = Gateway::start(Db::Sqlite, "[auth]\ntrusted_proxies = [\"127.0.0.1/32\"]\n").await;
    gw.restart_with_env(&[("RDEV_LISTEN", "[::]:0")]);
    assert!(gw.url.starts_with("http://[::]:"), "{}", gw.url);
    let port = gw.url.rsplit(':').next().unwrap().to_owned();
    // Through the dual-stack socket an IPv4 client's peer address is ::ffff:127.0.0.1.
    gw.url = format!("http://127.0.0.1:{port}");
    wait_until(Duration::from_secs(20), || async {
        gw.request(Method::GET, "/health").send().await.is_ok()
    })
    .await;

    let (loopback_id, loopback) = gw
        .key(json!({"name": "loopback", "scopes": ["projects:read"], "allowed_cidrs": ["127.0.0.1/32"]}))
        .await;
    let (status, body) = gw.call(Method::GET, "/v1/projects", &loopback, None).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a key allowed 127.0.0.1/32 from ::ffff:127.0.0.1: {body}"
    );

    let (_, ten) = gw
        .key(json!({"name": "ten", "scopes": ["projects:read"], "allowed_cidrs": ["10.0.0.0/8"]}))
        .await;
    let forwarded = crate::common::send(
        gw.request(Method::GET, "/v1/projects")
            .bearer_auth(&ten)
            .header("x-forwarded-for", "10.1.2.3"),
    )
    .await;
    assert_eq!(
        forwarded.status,
        StatusCode::OK,
        "the trusted proxy 127.0.0.1/32: {:?}",
        forwarded.body
    );

    let revoked = gw
        .call(
            Method::DELETE,
            &format!("/v1/keys/{loopback_id}"),
            &gw.admin_token,
            None,
        )
        .await;
    assert!(revoked.0.is_success(), "{revoked:?}");
    let events = gw.audit("action=DELETE%20/v1/keys/%7Bid%7D").await;
    assert!(!events.is_empty());
    for event in events {
        assert_eq!(event["client_ip"], "127.0.0.1", "audited as the IPv4 address: {event}");
    }
}
