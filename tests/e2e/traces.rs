//! OTLP traces as a collector receives them: an OTLP/HTTP receiver inside the test decodes the
//! real protobuf (`opentelemetry-proto`) and the span tree of one command is checked, continuing
//! the caller's W3C `traceparent`; the trace id is in the audit rows and the log lines.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Db, Gateway, send, wait_until};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// What the receiver was sent: spans, and the `service.name` of their resource.
#[derive(Default)]
struct Received {
    spans: Vec<Span>,
    services: Vec<String>,
}

struct Receiver {
    url: String,
    received: Arc<Mutex<Received>>,
}

fn text(value: &Option<AnyValue>) -> String {
    match value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        _ => String::new(),
    }
}

fn attributes(attributes: &[KeyValue]) -> HashMap<String, String> {
    attributes.iter().map(|kv| (kv.key.clone(), text(&kv.value))).collect()
}

/// An OTLP/HTTP receiver (`POST /v1/traces`, protobuf) on a free port.
async fn receiver() -> Receiver {
    let received = Arc::new(Mutex::new(Received::default()));
    let sink = received.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        post(move |body: Bytes| async move {
            let request = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf export");
            let mut received = sink.lock().unwrap();
            for resource_spans in request.resource_spans {
                let resource = resource_spans
                    .resource
                    .map(|r| attributes(&r.attributes))
                    .unwrap_or_default();
                received
                    .services
                    .push(resource.get("service.name").cloned().unwrap_or_default());
                for scope in resource_spans.scope_spans {
                    received.spans.extend(scope.spans);
                }
            }
            let reply = ExportTraceServiceResponse::default().encode_to_vec();
            ([("content-type", "application/x-protobuf")], reply)
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Receiver { url, received }
}

fn spans_of(receiver: &Receiver, trace: &str) -> Vec<Span> {
    let received = receiver.received.lock().unwrap();
    received
        .spans
        .iter()
        .filter(|s| hex(&s.trace_id) == trace)
        .cloned()
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn named<'a>(spans: &'a [Span], name: &str) -> &'a Span {
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    spans
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no span `{name}` among {names:?}"))
}

/// A gateway exporting to `receiver`, logging at `log_filter` (`RUST_LOG`).
async fn exporting_gateway(receiver: &Receiver, log_filter: &str) -> Gateway {
    let mut gw = Gateway::start_with_plugins(Db::Sqlite, "").await;
    gw.restart_with_env(&[
        ("RUST_LOG", log_filter),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.url),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ("OTEL_SERVICE_NAME", "rdev-e2e"),
    ]);
    gw.wait_for_project("demo").await;
    gw
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_command_is_one_trace_continuing_the_callers_traceparent() {
    one_command_is_one_trace("info,sqlx=warn").await;
}

/// At debug level a log span wraps each request too: the trace's spans must not hang off it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_span_tree_is_the_same_with_debug_logs() {
    one_command_is_one_trace("debug,sqlx=warn,hyper=info,h2=info,tower=info").await;
}

async fn one_command_is_one_trace(log_filter: &str) {
    let receiver = receiver().await;
    let gw = exporting_gateway(&receiver, log_filter).await;
    let accepted = send(
        gw.request(Method::POST, "/v1/projects/demo/commands")
            .bearer_auth(&gw.admin_token)
            .header("traceparent", format!("00-{TRACE_ID}-{CALLER_SPAN}-01"))
            .json(&json!({"kind": "shell", "script": "echo traced"})),
    )
    .await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{accepted:?}");
    let id = accepted.body["id"].as_str().unwrap().to_owned();
    gw.wait_done(&id).await;
    let wanted = [
        "POST /v1/projects/{project}/commands",
        "authenticate",
        "queue",
        "execute",
    ];
    wait_until(Duration::from_secs(30), || {
        let spans = spans_of(&receiver, TRACE_ID);
        let done = wanted.iter().all(|w| spans.iter().any(|s| s.name == *w))
            && spans.iter().filter(|s| s.name.starts_with("plugin ")).count() >= 2;
        std::future::ready(done)
    })
    .await;
    let spans = spans_of(&receiver, TRACE_ID);
    let request = named(&spans, "POST /v1/projects/{project}/commands");
    assert_eq!(
        hex(&request.parent_span_id),
        CALLER_SPAN,
        "the caller's span is the parent"
    );
    let attrs = attributes(&request.attributes);
    assert_eq!(attrs["http.request.method"], "POST");
    assert_eq!(attrs["http.route"], "/v1/projects/{project}/commands");
    assert_eq!(attrs["http.response.status_code"], "202");
    for child in [
        "authenticate",
        "queue",
        "execute",
        "plugin shell-sanitizer",
        "plugin request-validator",
    ] {
        let span = named(&spans, child);
        assert_eq!(
            span.parent_span_id, request.span_id,
            "`{child}` is a child of the request"
        );
    }
    let sanitizer = attributes(&named(&spans, "plugin shell-sanitizer").attributes);
    assert_eq!(sanitizer["rdev.plugin.verdict"], "allow");
    assert_eq!(sanitizer["rdev.plugin.digest"].len(), 64, "{sanitizer:?}");
    let validator = attributes(&named(&spans, "plugin request-validator").attributes);
    assert_eq!(validator["rdev.plugin.verdict"], "valid");
    let execute = attributes(&named(&spans, "execute").attributes);
    assert_eq!(
        (execute["rdev.backend"].as_str(), execute["rdev.exit_code"].as_str()),
        ("local", "0")
    );
    assert!(
        receiver
            .received
            .lock()
            .unwrap()
            .services
            .iter()
            .all(|s| s == "rdev-e2e")
    );
    let audit = gw.audit("action=command.accepted").await;
    assert_eq!(audit[0]["trace_id"], TRACE_ID, "{audit:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trace_id_is_in_the_log_lines_of_its_request() {
    let receiver = receiver().await;
    let gw = exporting_gateway(&receiver, "info,sqlx=warn").await;
    let trace = "0af7651916cd43dd8448eb211c80319c";
    let refused = send(
        gw.request(Method::GET, "/v1/projects")
            .bearer_auth("rdev_not_a_token")
            .header("traceparent", format!("00-{trace}-b7ad6b7169203331-01")),
    )
    .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    wait_until(Duration::from_secs(20), || {
        let logged = gw.logs.lines().iter().any(|line| {
            let fields: Value = serde_json::from_str(line).unwrap_or_default();
            fields["message"] == "authentication refused" && fields["trace_id"] == trace
        });
        std::future::ready(logged)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_otel_configuration_nothing_is_exported() {
    let gw = Gateway::start(Db::Sqlite, "").await;
    let reply = send(
        gw.request(Method::GET, "/v1/projects")
            .bearer_auth(&gw.admin_token)
            .header("traceparent", format!("00-{TRACE_ID}-{CALLER_SPAN}-01")),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    let lines = gw.logs.lines();
    assert!(lines.iter().all(|l| !l.contains("exporting traces")), "{lines:?}");
    let audit = gw.audit("action=key.create").await;
    assert!(audit.iter().all(|row| row["trace_id"].is_null()));
}
