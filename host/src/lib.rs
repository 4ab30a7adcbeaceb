//! rdev: a gateway for remote development. Clients run commands in project workspaces through a
//! REST API and watch their output live over SSE; policy decisions go through plugin seams.

pub mod app;
pub mod auth;
pub mod authoring;
pub mod claude_items;
pub mod cli;
pub mod commands;
pub mod config;
pub mod exec;
pub mod http;
pub mod limits;
pub mod names;
pub mod plugins;
pub mod projects;
pub mod replicas;
pub mod retention;
pub mod store;
pub mod streaming;
pub mod telemetry;
pub mod time;
pub mod webhooks;

/// Makes ring the process's TLS provider. reqwest is built without one (its default would compile
/// aws-lc), so every HTTP client of the process, the webhook sender's and the trace exporter's,
/// needs it before it is built; calling it again changes nothing.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// An HTTP client with the defaults, after [`install_tls_provider`].
pub fn http_client() -> reqwest::Client {
    install_tls_provider();
    reqwest::Client::new()
}
