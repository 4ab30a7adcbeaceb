//! The HTTP server: our own accept loop on hyper instead of `axum::serve`, so that every
//! connection has read timeouts, counts against a connection cap (with a shed mode that keeps
//! `/health` and `/ready` answering beyond it), and errors hyper answers by itself still carry
//! the JSON envelope.

mod admission;
mod body;
mod conn_state;
mod connection;
mod io;
mod reply;
mod rlimit;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use body::BodyTimeout;

use crate::config::HttpConfig;
use admission::Admission;
use connection::Settings;
use io::Timeouts;

/// Headers of a connection served in shed mode must arrive within this (or the configured
/// header timeout, if shorter): such a connection exists only for a quick probe.
const SHED_HEADER_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a connection beyond the cap and its overflow waits for a place before it is closed
/// (the accept loop waits with it). Evicted idle connections close within this on a loaded machine.
const FULL_PATIENCE: Duration = Duration::from_secs(2);

/// Pause after accepting failed for lack of descriptors or memory, so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves `router` on `listener` until `stop` is cancelled; then accepts nothing more, lets each
/// open connection finish the request it is serving, and returns once all are closed.
pub async fn serve(listener: TcpListener, router: Router, config: HttpConfig, stop: CancellationToken) {
    let nofile = rlimit::raise_nofile_limit();
    let (max, overflow) = connection_cap(&config, nofile);
    let admission = Arc::new(Admission::new(max, overflow));
    let settings = Arc::new(settings(router, &config));
    let connections = TaskTracker::new();
    loop {
        let (stream, peer) = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(&e).await;
                    continue;
                }
            },
        };
        let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
        // Beyond the cap and its overflow the connection waits a moment for a place, then is
        // closed: holding it open longer costs a descriptor that served clients need.
        let Some(ticket) = admission.admit_within(FULL_PATIENCE).await else {
            tracing::debug!(%peer, "connection refused: over the connection cap");
            continue;
        };
        set_nodelay(&stream);
        connections.spawn(connection::run(stream, peer, ticket, settings.clone(), stop.clone()));
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

fn settings(router: Router, config: &HttpConfig) -> Settings {
    let timeouts = Timeouts {
        idle: Duration::from_secs(config.idle_timeout_secs),
        header: Duration::from_secs(config.header_timeout_secs),
        dispatch: Duration::from_millis(config.dispatch_timeout_ms),
    };
    let shed_header = timeouts.header.min(SHED_HEADER_TIMEOUT);
    Settings {
        router,
        timeouts,
        shed_timeouts: Timeouts {
            idle: shed_header,
            header: shed_header,
            dispatch: timeouts.dispatch,
        },
        body_timeout: Duration::from_secs(config.body_timeout_secs),
    }
}

/// The configured cap, lowered if the descriptor limit leaves no room for it (the limit also has
/// to cover the database, plugin files and logs).
fn connection_cap(config: &HttpConfig, nofile: u64) -> (usize, usize) {
    let budget = rlimit::connection_budget(nofile);
    // Shed connections and connections being evicted may each reach `overflow` at once.
    let overflow = config.overflow_connections.min(budget / 8).max(1);
    let max = config.max_connections.min(budget.saturating_sub(2 * overflow)).max(1);
    if (max, overflow) != (config.max_connections, config.overflow_connections) {
        tracing::warn!(
            nofile,
            max_connections = max,
            overflow_connections = overflow,
            "connection cap lowered to fit the open-file limit"
        );
    }
    (max, overflow)
}

async fn accept_failed(e: &std::io::Error) {
    use nix::errno::Errno;
    let errno = e.raw_os_error().map(Errno::from_raw);
    if matches!(
        errno,
        Some(Errno::EMFILE | Errno::ENFILE | Errno::ENOBUFS | Errno::ENOMEM)
    ) {
        tracing::warn!(error = %e, "cannot accept connections");
        tokio::time::sleep(ACCEPT_BACKOFF).await;
    } else {
        tracing::debug!(error = %e, "accept failed");
    }
}

/// Small writes go out at once: SSE events must not wait for Nagle's algorithm and the client's
/// delayed ACK (tens of milliseconds per event).
fn set_nodelay(tcp: &TcpStream) {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::warn!(error = %e, "cannot set TCP_NODELAY");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_fits_under_a_small_descriptor_limit() {
        let config = HttpConfig::default();
        let (max, overflow) = connection_cap(&config, 256);
        assert!(max + 2 * overflow <= 256 - 64, "{max} + 2 × {overflow}");
        assert!(max >= 100 && overflow >= 16, "{max}, {overflow}");
        let roomy = connection_cap(&config, 1 << 20);
        assert_eq!(roomy, (config.max_connections, config.overflow_connections));
    }
}
