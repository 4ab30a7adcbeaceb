//! OTLP trace export, configured by the standard `OTEL_*` variables and off unless an OTLP
//! endpoint is set. The gateway's own spans use [`TARGET`]: only the exporter sees them, so that
//! with export off they are disabled at their call sites and cost next to nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, Method};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TraceId, TracerProvider as _};
use opentelemetry_http::HeaderExtractor;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The target of every span meant for the trace exporter.
pub const TARGET: &str = "rdev_trace";

/// The one OTLP protocol built in.
const PROTOCOL: &str = "http/protobuf";

/// Why trace export could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("OTLP trace export: {0}")]
pub struct TraceSetupError(String);

/// What the environment asks of trace export.
#[derive(Debug, PartialEq, Eq)]
pub enum Export {
    /// Nothing is configured, or export is switched off.
    Off,
    /// Export over OTLP/HTTP; the exporter reads its endpoint, headers and timeout itself.
    On {
        /// `OTEL_SERVICE_NAME`, `rdev` by default.
        service_name: String,
    },
}

/// Reads the `OTEL_*` variables from `env` (the process environment in production).
pub fn export_from(env: &HashMap<String, String>) -> Result<Export, TraceSetupError> {
    let set = |name: &str| env.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
    let endpoint = set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").or(set("OTEL_EXPORTER_OTLP_ENDPOINT"));
    let disabled = set("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"))
        || set("OTEL_TRACES_EXPORTER").is_some_and(|v| v.eq_ignore_ascii_case("none"));
    if endpoint.is_none() || disabled {
        return Ok(Export::Off);
    }
    let protocol = set("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL").or(set("OTEL_EXPORTER_OTLP_PROTOCOL"));
    if let Some(other) = protocol.filter(|p| *p != PROTOCOL) {
        return Err(TraceSetupError(format!(
            "protocol `{other}` is not built in; use `{PROTOCOL}` (OTLP over HTTP, port 4318)"
        )));
    }
    if let Some(other) = set("OTEL_TRACES_EXPORTER").filter(|e| !e.eq_ignore_ascii_case("otlp")) {
        return Err(TraceSetupError(format!(
            "exporter `{other}` is not built in; use `otlp`"
        )));
    }
    let service_name = set("OTEL_SERVICE_NAME").unwrap_or("rdev").to_owned();
    Ok(Export::On { service_name })
}

/// The tracer provider the environment asks for, if any. It batches spans on a thread of its
/// own; [`SdkTracerProvider::shutdown`] flushes them.
pub fn provider_from_env() -> Result<Option<SdkTracerProvider>, TraceSetupError> {
    let env: HashMap<String, String> = std::env::vars().collect();
    let Export::On { service_name } = export_from(&env)? else {
        return Ok(None);
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
        .map_err(|e| TraceSetupError(e.to_string()))?;
    let resource = Resource::builder().with_service_name(service_name).build();
    Ok(Some(
        SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build(),
    ))
}

/// The span of one HTTP request (OpenTelemetry HTTP server conventions), continuing the trace of
/// a W3C `traceparent` header, and its trace id; a disabled span and no id while nothing exports.
pub fn request_span(method: &Method, route: &str, path: &str, headers: &HeaderMap) -> (Span, Option<String>) {
    // The fields are evaluated only when the span is enabled.
    let span = tracing::info_span!(
        target: TARGET,
        "request",
        otel.name = format!("{method} {route}"),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        http.request.method = %method,
        http.route = route,
        url.path = path,
        http.response.status_code = tracing::field::Empty,
    );
    if span.is_disabled() {
        return (span, None);
    }
    let parent = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
    let context = span.context();
    let trace_id = context.span().span_context().trace_id();
    (span, (trace_id != TraceId::INVALID).then(|| trace_id.to_string()))
}

/// Records the answer's status on a request span.
pub fn record_status(span: &Span, status: u16) {
    span.record("http.response.status_code", status);
    if status >= 500 {
        span.record("otel.status_code", "ERROR");
    }
}

/// Commands waiting in the queue whose traces are followed at most; past this a command's queue
/// wait and execution are not traced (memory stays bounded however long queues grow).
const FOLLOWED: usize = 10_000;

/// The spans of commands after their request answered: the queue wait, then the execution,
/// both in the trace of the request that queued the command (on the replica that accepted it;
/// a command claimed by another replica starts a trace of its own there).
#[derive(Clone, Default)]
pub struct CommandSpans {
    queued: Arc<Mutex<HashMap<String, (Span, opentelemetry::Context)>>>,
}

impl CommandSpans {
    /// Opens the queue span of a command just stored, in the current (request) span's trace.
    pub fn queued(&self, id: &str) {
        let parent = Span::current();
        if parent.is_disabled() {
            return;
        }
        let span = tracing::info_span!(target: TARGET, "queue", rdev.command.id = id);
        let mut queued = self.queued.lock().unwrap_or_else(|e| e.into_inner());
        if queued.len() < FOLLOWED {
            queued.insert(id.to_owned(), (span, parent.context()));
        }
    }

    /// Ends a command's queue span and opens its execution span, `backend` naming where it runs.
    pub fn started(&self, id: &str, backend: &str, pod: Option<&str>) -> Span {
        let queued = self.queued.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
        let span = tracing::info_span!(
            target: TARGET,
            parent: None,
            "execute",
            rdev.command.id = id,
            rdev.backend = backend,
            rdev.pod = pod,
            rdev.state = tracing::field::Empty,
            rdev.exit_code = tracing::field::Empty,
        );
        if let Some((queue, parent)) = queued {
            drop(queue);
            let _ = span.set_parent(parent);
        }
        span
    }

    /// Forgets a command that ended without running.
    pub fn ended(&self, id: &str) {
        self.queued.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
    }
}

/// The tracer of the gateway's spans.
pub fn tracer(provider: &SdkTracerProvider) -> opentelemetry_sdk::trace::SdkTracer {
    provider.tracer("rdev")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn nothing_configured_means_no_export() {
        assert_eq!(export_from(&env(&[])).unwrap(), Export::Off);
        assert_eq!(export_from(&env(&[("OTEL_SERVICE_NAME", "x")])).unwrap(), Export::Off);
        let disabled = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_SDK_DISABLED", "true"),
        ];
        assert_eq!(export_from(&env(&disabled)).unwrap(), Export::Off);
        let none = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_TRACES_EXPORTER", "none"),
        ];
        assert_eq!(export_from(&env(&none)).unwrap(), Export::Off);
    }

    #[test]
    fn an_endpoint_turns_export_on_with_the_service_name() {
        let on = export_from(&env(&[(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "http://c:4318/v1/traces",
        )]));
        let named = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_SERVICE_NAME", "gw"),
        ];
        assert_eq!(
            on.unwrap(),
            Export::On {
                service_name: "rdev".into()
            }
        );
        assert_eq!(
            export_from(&env(&named)).unwrap(),
            Export::On {
                service_name: "gw".into()
            }
        );
    }

    #[test]
    fn a_protocol_or_exporter_not_built_in_is_an_error() {
        let grpc = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ];
        assert!(export_from(&env(&grpc)).unwrap_err().to_string().contains("grpc"));
        let zipkin = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_TRACES_EXPORTER", "zipkin"),
        ];
        assert!(export_from(&env(&zipkin)).is_err());
    }
}
