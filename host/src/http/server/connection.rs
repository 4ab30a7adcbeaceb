//! One connection: the service that hands its requests to the router (or sheds them), and the
//! task that serves it until it closes.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::admission::Ticket;
use super::body::{Finished, Tracked, request_body};
use super::conn_state::ConnState;
use super::io::{ConnIo, Timeouts};
use super::reply;

/// What every connection is served with.
pub(super) struct Settings {
    /// The application.
    pub router: Router,
    /// Timeouts of normal connections.
    pub timeouts: Timeouts,
    /// Timeouts of connections served in shed mode.
    pub shed_timeouts: Timeouts,
    /// Time allowed for a request body, from the end of its head.
    pub body_timeout: Duration,
}

/// Serves one accepted connection (from `peer`, canonical) until it closes, is evicted, or the
/// server stops.
pub(super) async fn run(
    stream: TcpStream,
    peer: SocketAddr,
    ticket: Ticket,
    settings: Arc<Settings>,
    stop: CancellationToken,
) {
    let shed = ticket.shed();
    let state = ticket.state().clone();
    let timeouts = if shed {
        settings.shed_timeouts
    } else {
        settings.timeouts
    };
    let io = TokioIo::new(ConnIo::new(stream, state.clone(), timeouts));
    let service = ConnService {
        router: settings.router.clone(),
        state: state.clone(),
        peer,
        shed,
        body_timeout: settings.body_timeout,
    };
    let mut builder = http1::Builder::new();
    // Our socket wrapper enforces the header timeout (hyper's counts idle time too).
    builder.keep_alive(!shed).header_read_timeout(None::<Duration>);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let asked_to_close = async {
        tokio::select! {
            () = stop.cancelled() => {}
            () = state.closing().cancelled() => {}
        }
    };
    let ended = tokio::select! {
        result = conn.as_mut() => Some(result),
        () = asked_to_close => None,
    };
    // Asked to close: the request being served (if any) is answered first.
    let result = match ended {
        Some(result) => result,
        None => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
    drop(ticket);
}

/// Hands requests to the router, with the peer address, a body deadline and a marker that
/// tells the socket wrapper when the response is done; in shed mode only the probes get through.
#[derive(Clone)]
struct ConnService {
    router: Router,
    state: Arc<ConnState>,
    peer: SocketAddr,
    shed: bool,
    body_timeout: Duration,
}

type ResponseFuture = Pin<Box<dyn Future<Output = Result<Response<Tracked>, Infallible>> + Send>>;

impl hyper::service::Service<Request<Incoming>> for ConnService {
    type Response = Response<Tracked>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn call(&self, req: Request<Incoming>) -> ResponseFuture {
        self.state.request_started();
        let finished = Finished::new(self.state.clone());
        let mut req = req.map(|body| request_body(body, self.body_timeout));
        req.extensions_mut().insert(ConnectInfo(self.peer));
        if self.shed && !matches!(req.uri().path(), "/health" | "/ready") {
            let response = reply::shed();
            return Box::pin(std::future::ready(Ok(response.map(|b| Tracked::new(b, finished)))));
        }
        let router = self.router.clone();
        Box::pin(async move {
            let response = router.oneshot(req).await.unwrap_or_else(|never| match never {});
            Ok(response.map(|b| Tracked::new(b, finished)))
        })
    }
}
