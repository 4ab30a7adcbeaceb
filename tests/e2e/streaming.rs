//! Output streams: exact resume after an event id, live follow across reconnects, many
//! subscribers, encoding that cannot forge SSE fields, and streams that end on revocation or cancel.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::sse::{SseEvent, SseStream, collect_whole, output_text};
use crate::common::{Db, Gateway};

fn stream_url(gw: &Gateway, id: &str) -> String {
    format!("{}/v1/commands/{id}/stream", gw.url)
}

/// Sequence numbers of the `output` events, checked against their SSE ids.
fn seqs(events: &[SseEvent]) -> Vec<i64> {
    events
        .iter()
        .filter(|e| e.event == "output")
        .map(|e| {
            let seq = e.data["seq"].as_i64().unwrap();
            assert_eq!(e.id.as_deref(), Some(seq.to_string().as_str()), "{e:?}");
            seq
        })
        .collect()
}

/// `1\n2\n...n\n`.
fn numbered_lines(n: usize) -> String {
    (1..=n).map(|i| format!("{i}\n")).collect()
}

fn assert_ends(events: &[SseEvent], state: &str) {
    let ends: Vec<_> = events.iter().filter(|e| e.event != "output").collect();
    assert_eq!(ends.len(), 1, "{events:?}");
    let end = events.last().unwrap();
    assert_eq!(
        (end.event.as_str(), end.data["state"].as_str()),
        ("end", Some(state)),
        "{end:?}"
    );
}

async fn resuming_after_an_event_id_replays_exactly_the_later_events(db: Db) {
    let gw = Gateway::start(db, "").await;
    let id = gw
        .shell("demo", "for i in $(seq 1 40); do echo line $i; sleep 0.01; done")
        .await;
    gw.wait_done(&id).await;
    let url = stream_url(&gw, &id);
    let all = SseStream::open(&url, &gw.admin_token, None).await.collect().await;
    assert_ends(&all, "succeeded");
    let n = seqs(&all).len() as i64;
    assert!(n >= 3, "expected several chunks: {all:?}");
    assert_eq!(seqs(&all), (1..=n).collect::<Vec<_>>());
    for after in [0, 1, n / 2, n - 1, n] {
        let expected = &all[after as usize..];
        let by_header = SseStream::open(&url, &gw.admin_token, Some(&after.to_string()))
            .await
            .collect()
            .await;
        assert_eq!(seqs(&by_header), (after + 1..=n).collect::<Vec<_>>());
        assert_eq!(by_header, expected, "Last-Event-ID: {after}");
        let query_url = format!("{url}?last_event_id={after}");
        let by_query = SseStream::open(&query_url, &gw.admin_token, None).await.collect().await;
        assert_eq!(by_query, expected, "?last_event_id={after}");
    }
}

async fn a_malformed_last_event_id_is_a_bad_request(db: Db) {
    let gw = Gateway::start(db, "").await;
    let id = gw.shell("demo", "echo hi").await;
    gw.wait_done(&id).await;
    let url = stream_url(&gw, &id);
    for bad in ["abc", "-1", "1.5"] {
        let by_header = gw
            .client
            .get(&url)
            .bearer_auth(&gw.admin_token)
            .header("Last-Event-ID", bad)
            .send()
            .await
            .unwrap();
        let by_query = gw
            .client
            .get(format!("{url}?last_event_id={bad}"))
            .bearer_auth(&gw.admin_token)
            .send()
            .await
            .unwrap();
        for resp in [by_header, by_query] {
            assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "Last-Event-ID {bad:?}");
            let body: Value = resp.json().await.unwrap();
            assert_eq!(body["error"]["code"], "bad_last_event_id", "{body}");
            assert!(body["error"]["message"].is_string(), "{body}");
            assert!(body["error"]["request_id"].is_string(), "{body}");
        }
    }
}

async fn a_reconnecting_follower_gets_every_line_once_in_order(db: Db) {
    let gw = Gateway::start(db, "").await;
    let id = gw
        .shell("demo", "for i in $(seq 1 200); do echo $i; sleep 0.01; done")
        .await;
    let url = stream_url(&gw, &id);
    let mut live = SseStream::open(&url, &gw.admin_token, None).await;
    let mut first = Vec::new();
    while output_text(&first).lines().count() < 30 {
        let event = live.next().await.expect("live output");
        assert_eq!(event.event, "output", "{event:?}");
        first.push(event);
    }
    drop(live);
    assert_eq!(gw.command(&id).await["state"], "running", "the drop happened mid-way");
    let last_id = first.last().unwrap().id.clone().unwrap();
    let rest = SseStream::open(&url, &gw.admin_token, Some(&last_id))
        .await
        .collect()
        .await;
    assert_ends(&rest, "succeeded");
    let both: Vec<SseEvent> = first.into_iter().chain(rest).collect();
    let n = seqs(&both).len() as i64;
    assert_eq!(seqs(&both), (1..=n).collect::<Vec<_>>(), "no gap and no duplicate");
    assert_eq!(output_text(&both), numbered_lines(200));
}

async fn simultaneous_subscribers_receive_identical_complete_streams(db: Db) {
    let gw = Gateway::start(db, "").await;
    let id = gw
        .shell("demo", "for i in $(seq 1 100); do echo $i; sleep 0.01; done")
        .await;
    let url = stream_url(&gw, &id);
    let mut streams = Vec::new();
    for _ in 0..4 {
        streams.push(SseStream::open(&url, &gw.admin_token, None).await);
    }
    let results = futures::future::join_all(streams.into_iter().map(SseStream::collect)).await;
    let late = SseStream::open(&url, &gw.admin_token, None).await.collect().await;
    for events in &results {
        assert_ends(events, "succeeded");
        assert_eq!(output_text(events), numbered_lines(100));
        assert_eq!(events, &late);
    }
}

async fn output_cannot_forge_sse_fields(db: Db) {
    let gw = Gateway::start(db, "").await;
    let id = gw
        .shell(
            "demo",
            r"printf 'a\r\nevent: end\ndata: {}\n\0\377zz\n'; printf 'id: 99\n\nevent: end\n'",
        )
        .await;
    let done = gw.wait_done(&id).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    let url = stream_url(&gw, &id);
    let raw = gw
        .client
        .get(&url)
        .bearer_auth(&gw.admin_token)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(
        !raw.contains(&0) && !raw.contains(&b'\r'),
        "raw control bytes in the stream"
    );
    let raw = String::from_utf8(raw.to_vec()).unwrap();
    let fields: Vec<&str> = raw
        .lines()
        .filter(|l| !l.starts_with("data:") && !l.starts_with(':') && !l.is_empty())
        .collect();
    for field in &fields {
        assert!(
            ["event: output", "event: end"].contains(field) || field.starts_with("id: "),
            "unexpected SSE line {field:?} in {raw}"
        );
    }
    assert_eq!(fields.iter().filter(|f| **f == "event: end").count(), 1, "{raw}");
    let ids: Vec<&str> = fields.iter().filter_map(|f| f.strip_prefix("id: ")).collect();
    let events = collect_whole(&url, &gw.admin_token).await;
    assert_ends(&events, "succeeded");
    assert_eq!(ids.len(), seqs(&events).len());
    assert_eq!(
        output_text(&events),
        "a\r\nevent: end\ndata: {}\n\u{0}\u{fffd}zz\nid: 99\n\nevent: end\n"
    );
}

async fn a_character_split_across_writes_arrives_intact(db: Db) {
    let gw = Gateway::start(db, "").await;
    let script =
        r"printf '\342\202'; sleep 0.3; printf '\254 euro\n'; printf '\360\237'; sleep 0.3; printf '\230\200 smile\n'";
    let id = gw.shell("demo", script).await;
    assert_eq!(gw.wait_done(&id).await["state"], "succeeded");
    let events = collect_whole(&stream_url(&gw, &id), &gw.admin_token).await;
    assert_eq!(output_text(&events), "€ euro\n😀 smile\n");
}

async fn stdout_and_stderr_are_labelled(db: Db) {
    let gw = Gateway::start(db, "").await;
    let script = "echo out1; sleep 0.1; echo err1 >&2; sleep 0.1; echo out2; echo err2 >&2";
    let id = gw.shell("demo", script).await;
    assert_eq!(gw.wait_done(&id).await["state"], "succeeded");
    let events = collect_whole(&stream_url(&gw, &id), &gw.admin_token).await;
    let text_of = |stream: &str| -> String {
        events
            .iter()
            .filter(|e| e.event == "output" && e.data["stream"] == stream)
            .map(|e| e.data["text"].as_str().unwrap())
            .collect()
    };
    assert_eq!(text_of("stdout"), "out1\nout2\n");
    assert_eq!(text_of("stderr"), "err1\nerr2\n");
    let labelled = events.iter().filter(|e| e.event == "output");
    assert!(
        labelled
            .clone()
            .all(|e| e.data["stream"] == "stdout" || e.data["stream"] == "stderr")
    );
    assert_eq!(labelled.count(), seqs(&events).len());
}

async fn revoking_a_key_closes_its_open_stream(db: Db) {
    let gw = Gateway::start(db, "").await;
    let (key_id, token) = gw.key(json!({"name": "viewer", "scopes": ["commands:read"]})).await;
    let id = gw
        .shell("demo", "echo started; while [ ! -f go ]; do sleep 0.05; done")
        .await;
    let url = stream_url(&gw, &id);
    let mut live = SseStream::open(&url, &token, None).await;
    assert_eq!(live.status, StatusCode::OK);
    assert_eq!(live.next().await.expect("output").data["text"], "started\n");
    let (status, body) = gw
        .call(Method::DELETE, &format!("/v1/keys/{key_id}"), &gw.admin_token, None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let closing = live.next().await.expect("an error event");
    assert_eq!(
        (closing.event.as_str(), &closing.data["code"]),
        ("error", &json!("unauthorized"))
    );
    assert!(live.next().await.is_none(), "the stream stays open after revocation");
    assert_eq!(gw.command(&id).await["state"], "running");
    let again = SseStream::open(&url, &token, None).await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
    std::fs::write(gw.workspaces().join("demo/go"), "").unwrap();
    assert_eq!(gw.wait_done(&id).await["state"], "succeeded");
}

async fn an_expiring_key_closes_its_open_stream(db: Db) {
    let gw = Gateway::start(db, "").await;
    let expires = time::OffsetDateTime::now_utc() + time::Duration::seconds(3);
    let expires_at = expires.format(&time::format_description::well_known::Rfc3339).unwrap();
    let body = json!({"name": "brief", "scopes": ["commands:read"], "expires_at": expires_at});
    let (_, token) = gw.key(body).await;
    let id = gw.shell("demo", "echo started; sleep 60").await;
    let mut live = SseStream::open(&stream_url(&gw, &id), &token, None).await;
    assert_eq!(live.status, StatusCode::OK);
    assert_eq!(live.next().await.expect("output").data["text"], "started\n");
    let closing = live.next().await.expect("an error event when the key expires");
    assert_eq!(closing.event, "error");
    assert_eq!(closing.data["message"], "API key expired");
    assert!(live.next().await.is_none(), "the stream closes");
    assert_eq!(gw.command(&id).await["state"], "running", "the command itself goes on");
}

async fn the_stream_of_a_cancelled_queued_command_ends_cancelled(db: Db) {
    let gw = Gateway::start(db, "[projects.demo]\nmax_concurrent_commands = 1\n").await;
    let blocker = gw.shell("demo", "while [ ! -f go ]; do sleep 0.05; done").await;
    gw.wait_state(&blocker, "running").await;
    let queued = gw.shell("demo", "echo never").await;
    let url = stream_url(&gw, &queued);
    let live = SseStream::open(&url, &gw.admin_token, None).await;
    let (status, _) = gw.post(&format!("/v1/commands/{queued}/cancel"), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let events = live.collect().await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_ends(&events, "cancelled");
    assert_eq!(events[0].data["exit_code"], Value::Null);
    let replayed = SseStream::open(&url, &gw.admin_token, None).await.collect().await;
    assert_eq!(replayed, events);
    std::fs::write(gw.workspaces().join("demo/go"), "").unwrap();
    assert_eq!(gw.wait_done(&blocker).await["state"], "succeeded");
}

async fn a_large_output_arrives_complete_and_in_order(db: Db) {
    let gw = Gateway::start(db, "").await;
    let id = gw.shell("demo", "seq 1 100000").await;
    let url = stream_url(&gw, &id);
    let live = SseStream::open(&url, &gw.admin_token, None).await.collect().await;
    assert_ends(&live, "succeeded");
    let text = output_text(&live);
    assert_eq!(text.lines().count(), 100_000);
    assert_eq!(text.lines().last(), Some("100000"));
    assert!(
        text == numbered_lines(100_000),
        "lines missing, repeated or out of order"
    );
    let n = seqs(&live).len() as i64;
    assert_eq!(seqs(&live), (1..=n).collect::<Vec<_>>());
    assert_eq!(collect_whole(&url, &gw.admin_token).await, live);
}

async fn idle_streams_get_heartbeat_comments(db: Db) {
    use futures::StreamExt;
    let gw = Gateway::start(db, "sse_heartbeat_secs = 1\n").await;
    let id = gw.shell("demo", "sleep 30").await;
    let url = format!("{}/v1/commands/{id}/stream", gw.url);
    let resp = gw.client.get(url).bearer_auth(&gw.admin_token).send().await.unwrap();
    let mut body = resp.bytes_stream();
    let mut seen = String::new();
    let deadline = std::time::Duration::from_secs(15);
    while !seen.contains(": heartbeat\n\n") {
        let chunk = tokio::time::timeout(deadline, body.next())
            .await
            .expect("no heartbeat")
            .unwrap()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(!seen.contains("event:"), "a silent command sends only comments: {seen}");
}

/// Sends a stream request over a socket with a tiny receive buffer, and never reads.
async fn stalled_reader(gw: &Gateway, id: &str) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let addr: std::net::SocketAddr = gw.url.trim_start_matches("http://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    let request = format!(
        "GET /v1/commands/{id}/stream HTTP/1.0\r\nAuthorization: Bearer {}\r\n\r\n",
        gw.admin_token
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    stream
}

async fn streams_open(gw: &Gateway) -> String {
    let resp = gw
        .client
        .get(format!("{}/metrics", gw.url))
        .bearer_auth(&gw.admin_token)
        .send()
        .await
        .unwrap();
    let text = resp.text().await.unwrap();
    text.lines()
        .find(|l| l.starts_with("rdev_streams_open "))
        .unwrap_or_default()
        .to_owned()
}

/// A reader that stops reading is cut after the dispatch timeout while a reader beside it gets
/// everything live; the cut one resumes with `Last-Event-ID` and misses nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_stops_reading_is_cut_and_resumes_with_everything() {
    use tokio::io::AsyncReadExt;
    const LINES: usize = 1_500_000;
    let gw = Gateway::start(Db::Sqlite, "http.dispatch_timeout_ms = 500\n").await;
    let id = gw.shell("demo", &format!("sleep 1; seq 1 {LINES}")).await;
    let mut stalled = stalled_reader(&gw, &id).await;
    let url = stream_url(&gw, &id);
    let live = SseStream::open(&url, &gw.admin_token, None).await.collect().await;
    assert_ends(&live, "succeeded");
    assert!(
        output_text(&live) == numbered_lines(LINES),
        "the reading follower lost output"
    );
    // Only the stalled stream is left; it goes once the gateway gives up on it.
    crate::common::wait_until(std::time::Duration::from_secs(60), || async {
        streams_open(&gw).await == "rdev_streams_open 0"
    })
    .await;

    let mut received = Vec::new();
    let read = stalled.read_to_end(&mut received);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(30), read)
        .await
        .expect("the cut stream stays open");
    let received = String::from_utf8_lossy(&received).into_owned();
    let (head, body) = received.split_once("\r\n\r\n").expect("a response head");
    assert!(head.starts_with("HTTP/1.") && head.contains(" 200 "), "{head}");
    let before = crate::common::sse::parse_complete(body);
    assert!(
        before.iter().all(|e| e.event == "output"),
        "the cut stream did not end normally"
    );
    assert!(before.len() < live.len() - 1, "the stalled reader was sent everything");
    let last = before.last().and_then(|e| e.id.clone()).unwrap_or_else(|| "0".into());
    let rest = SseStream::open(&url, &gw.admin_token, Some(&last))
        .await
        .collect()
        .await;
    assert_ends(&rest, "succeeded");
    let mut whole = before;
    whole.extend(rest);
    assert_eq!(seqs(&whole), seqs(&live), "a gap or a duplicate across the resume");
    assert!(output_text(&whole) == numbered_lines(LINES));
}

/// A gateway killed mid-stream: after the restart, the replay begins with exactly what the live
/// follower received before the crash (same ids, same text), then goes on with no gap. Output is
/// stored before it is sent, so the documented in-flight window is empty.
async fn a_crash_mid_stream_never_contradicts_what_was_streamed(db: Db) {
    let mut gw = Gateway::start(db, "").await;
    let id = gw
        .shell(
            "demo",
            "i=0; while [ $i -lt 2000000 ]; do i=$((i+1)); echo \"line $i\"; done",
        )
        .await;
    let mut live = SseStream::open(&stream_url(&gw, &id), &gw.admin_token, None).await;
    let mut seen = Vec::new();
    while seen.len() < 50 {
        seen.push(live.next().await.expect("output before the crash"));
    }
    gw.kill();
    // What the client had buffered was sent before the crash too.
    while let Some(event) = live.next().await {
        seen.push(event);
    }
    assert!(
        seen.iter().all(|e| e.event == "output"),
        "the stream ended before the crash"
    );
    gw.restart();
    let ended = gw.wait_done(&id).await;
    assert_eq!(ended["state"], "interrupted", "{ended}");
    let replay = collect_whole(&stream_url(&gw, &id), &gw.admin_token).await;
    assert_eq!(replay.last().map(|e| e.event.as_str()), Some("end"));
    assert!(replay.len() > seen.len(), "the replay lost what was streamed");
    assert_eq!(replay[..seen.len()], seen[..], "the replay contradicts the live stream");
    let n = seqs(&replay).len() as i64;
    assert_eq!(seqs(&replay), (1..=n).collect::<Vec<_>>());
}

/// The `end` event says why a command ended as it did, live and in a replay, the same as the
/// command's record.
async fn the_end_event_carries_the_reason(db: Db) {
    let gw = Gateway::start(db, "").await;
    let (status, cmd) = gw
        .post(
            "/v1/projects/demo/commands",
            json!({"kind": "shell", "script": "echo started; sleep 30", "timeout_secs": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{cmd}");
    let id = cmd["id"].as_str().unwrap();
    let live = SseStream::open(&stream_url(&gw, id), &gw.admin_token, None)
        .await
        .collect()
        .await;
    assert_ends(&live, "timed_out");
    let end = live.last().unwrap();
    let stored = gw.command(id).await;
    assert!(stored["reason"].as_str().is_some_and(|r| !r.is_empty()), "{stored}");
    assert_eq!(end.data["reason"], stored["reason"], "{end:?}");
    let replay = collect_whole(&stream_url(&gw, id), &gw.admin_token).await;
    assert_eq!(replay.last(), live.last());
    let plain = gw.shell("demo", "exit 3").await;
    gw.wait_done(&plain).await;
    let events = collect_whole(&stream_url(&gw, &plain), &gw.admin_token).await;
    assert_eq!(
        events.last().unwrap().data,
        json!({"state": "failed", "exit_code": 3, "reason": gw.command(&plain).await["reason"]})
    );
}

crate::on_both_databases!(
    the_end_event_carries_the_reason,
    a_crash_mid_stream_never_contradicts_what_was_streamed,
    resuming_after_an_event_id_replays_exactly_the_later_events,
    a_malformed_last_event_id_is_a_bad_request,
    a_reconnecting_follower_gets_every_line_once_in_order,
    simultaneous_subscribers_receive_identical_complete_streams,
    output_cannot_forge_sse_fields,
    a_character_split_across_writes_arrives_intact,
    stdout_and_stderr_are_labelled,
    revoking_a_key_closes_its_open_stream,
    an_expiring_key_closes_its_open_stream,
    the_stream_of_a_cancelled_queued_command_ends_cancelled,
    a_large_output_arrives_complete_and_in_order,
    idle_streams_get_heartbeat_comments,
);
