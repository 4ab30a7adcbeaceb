//! Logging and tracing: JSON lines (or text) on stderr, filtered by `RUST_LOG` (default `info`),
//! and spans exported over OTLP when the `OTEL_*` variables ask for it ([`traces`]). Stdout is
//! left to what the CLI prints for people and scripts. Metrics live in [`metrics`].

pub mod metrics;
pub mod traces;

pub use metrics::Metrics;

use serde::Deserialize;
use tracing_subscriber::filter::{EnvFilter, LevelFilter, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, Registry};

/// Log output format.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable lines.
    Text,
}

/// The trace exporter, while it runs; [`Telemetry::shutdown`] sends the spans still buffered.
#[derive(Debug, Default)]
pub struct Telemetry {
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Telemetry {
    /// Whether spans are exported.
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Flushes and stops the exporter.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(e) = provider.shutdown()
        {
            tracing::warn!(error = %e, "could not flush the last spans");
        }
    }
}

/// Installs the global subscriber writing to stderr, exporting spans if `export` and the
/// environment configures an exporter (once; later calls do nothing).
pub fn init(format: LogFormat, export: bool) -> Result<Telemetry, traces::TraceSetupError> {
    let provider = if export { traces::provider_from_env()? } else { None };
    install(format, std::io::stderr, provider.as_ref());
    Ok(Telemetry { provider })
}

/// Installs the global subscriber writing to `writer`, without trace export (benchmarks log to
/// a sink).
pub fn init_with_writer<W>(format: LogFormat, writer: W)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    install(format, writer, None);
}

/// Installs the global subscriber writing to `writer`, exporting spans to `provider` (benchmarks
/// measure export).
pub fn init_exporting<W>(format: LogFormat, writer: W, provider: &opentelemetry_sdk::trace::SdkTracerProvider)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    install(format, writer, Some(provider));
}

fn install<W>(format: LogFormat, writer: W, provider: Option<&opentelemetry_sdk::trace::SdkTracerProvider>)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    // The exporter's spans are not log lines: the log layer never sees them.
    let filter = filter.add_directive(format!("{}=off", traces::TARGET).parse().expect("a valid directive"));
    let logs = tracing_subscriber::fmt::layer().with_writer(writer);
    let logs = match format {
        LogFormat::Json => logs
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_filter(filter)
            .boxed(),
        LogFormat::Text => logs.with_filter(filter).boxed(),
    };
    let registry = Registry::default().with(logs);
    // Without an exporter the subscriber has no exporting layer at all (not an absent one, which
    // would enable every span call site and make the registry record spans no one reads).
    let Some(provider) = provider else {
        let _ = registry.try_init();
        return;
    };
    let export = {
        let only_ours = Targets::new().with_target(traces::TARGET, LevelFilter::TRACE);
        // No per-span thread, source location, target or busy/idle-time attributes, and no
        // OpenTelemetry context switched on every poll: each costs allocations or clock reads
        // on every request, and parents come from the span tree.
        tracing_opentelemetry::layer()
            .with_tracer(traces::tracer(provider))
            .with_location(false)
            .with_threads(false)
            .with_target(false)
            .with_tracked_inactivity(false)
            .with_context_activation(false)
            .with_filter(only_ours)
    };
    let _ = registry.with(export).try_init();
}
