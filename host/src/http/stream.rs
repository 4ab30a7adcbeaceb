//! `GET /v1/commands/{id}/stream`: Server-Sent Events of a command's output. Replays from the
//! store after `Last-Event-ID`, then follows live with no gap and no duplicate, and ends with an
//! `end` event. The stream is framed here: every `data:` field is one line of JSON (which escapes
//! CR, LF and NUL), so output can never forge SSE fields, and a replayed page goes out as one
//! body frame. The stream closes as soon as the caller's key is revoked or expires.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use futures::{Stream, StreamExt};
use prometheus::IntGauge;
use serde::Deserialize;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::watch;
use tokio::time::Instant;

use super::AppState;
use super::commands::visible_command;
use super::context::Caller;
use super::error::ApiError;
use super::extract::{Path, Query};
use crate::auth::AuthError;
use crate::limits::StreamPermit;
use crate::store::{CommandState, StoreResult};
use crate::streaming::{OutputHub, StreamEvent};

mod frames;

use frames::{
    HEARTBEAT_COMMENT, end_event, error_event, output_event, push_chunk, store_error_event, unavailable_event,
};

/// Most chunks one replay page reads.
const REPLAY_PAGE: i64 = 1000;
/// About the most output one replay page holds in memory: the page after a page of large chunks
/// reads fewer of them (always at least one).
const REPLAY_PAGE_BYTES: usize = 4 * 1024 * 1024;
/// Chunks the first page reads, before their size is known.
const FIRST_PAGE: i64 = 32;

/// Query parameters of the stream (for clients that cannot set headers, such as `EventSource`).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StreamParams {
    /// Resume after this sequence number (same as the `Last-Event-ID` header).
    last_event_id: Option<String>,
}

fn parse_last_event_id(headers: &HeaderMap, params: &StreamParams) -> Result<i64, ApiError> {
    let header = headers.get("last-event-id").map(|v| v.to_str().unwrap_or("\u{fffd}"));
    let Some(text) = header.or(params.last_event_id.as_deref()) else {
        return Ok(0);
    };
    text.trim()
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| ApiError::bad_request("bad_last_event_id", "Last-Event-ID must be a non-negative integer"))
}

/// Streams a command's output.
#[utoipa::path(get, path = "/v1/commands/{id}/stream", tag = "commands",
    params(("id" = String, Path, description = "Command id"),
           ("Last-Event-ID" = Option<String>, Header, description = "Resume after this sequence number"),
           StreamParams),
    responses((status = 200, content_type = "text/event-stream", description = "`output` events (id = seq) and, for `claude` runs, `claude` events (typed: init, text, tool_use, tool_decision, tool_result, result) in the same sequence; then one `end` event (`{\"state\", \"exit_code\", \"reason\"}`: why it ended so); comment lines as heartbeats"),
              (status = 400, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody),
              (status = 429, description = "The key holds as many open streams as its tier allows", body = super::error::ErrorBody)))]
pub async fn stream_output(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(params): Query<StreamParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    caller.require("commands:read")?;
    let after = parse_last_event_id(&headers, &params)?;
    let cmd = visible_command(&state, &caller, &id).await?;
    let permit = state.limits.open_stream(&caller.principal.key)?;
    let expiry = caller.principal.key.expires_at.map(|at| {
        let left = u64::try_from(at - crate::time::now_ms()).unwrap_or(0);
        Instant::now() + Duration::from_millis(left)
    });
    let follower = Follower {
        live: Subscription::new(&state.hub, &cmd.id, state.metrics.streams_open.clone()),
        request_id: super::request_id::current_request_id(),
        revocations: state.auth.revocations(),
        recheck: {
            // A timer of the stream's own: streams opened at different times recheck at
            // different times, where one shared tick would recheck all of them at once.
            let every = Duration::from_secs(state.config.sse_recheck_secs);
            tokio::time::interval_at(Instant::now() + every, every)
        },
        heartbeats: state.stream_clock.heartbeats(),
        sent_since_heartbeat: false,
        expiry,
        state,
        caller,
        id: cmd.id,
        last: after,
        page: FIRST_PAGE,
        _permit: permit,
        _span: tracing::info_span!(target: crate::telemetry::traces::TARGET, "stream", rdev.command.id = %id,
            rdev.last_event_id = after),
    };
    let mut response = Response::new(Body::from_stream(follower.events().map(Ok::<_, Infallible>)));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

/// A live subscription that frees the command's channel when the stream goes away.
struct Subscription {
    hub: OutputHub,
    id: String,
    rx: Option<broadcast::Receiver<StreamEvent>>,
    open: IntGauge,
}

impl Subscription {
    fn new(hub: &OutputHub, id: &str, open: IntGauge) -> Self {
        open.inc();
        Self {
            open,
            hub: hub.clone(),
            id: id.to_owned(),
            rx: Some(hub.subscribe(id)),
        }
    }

    async fn recv(&mut self) -> Result<StreamEvent, RecvError> {
        match &mut self.rx {
            Some(rx) => rx.recv().await,
            None => Err(RecvError::Closed),
        }
    }

    fn renew(&mut self) {
        self.rx = Some(self.hub.subscribe(&self.id));
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.rx = None;
        self.hub.release(&self.id);
        self.open.dec();
    }
}

struct Follower {
    state: AppState,
    caller: Caller,
    id: String,
    request_id: String,
    live: Subscription,
    revocations: broadcast::Receiver<String>,
    recheck: tokio::time::Interval,
    /// The shared heartbeat tick: a heartbeat goes out unless something was sent since the last.
    heartbeats: watch::Receiver<()>,
    sent_since_heartbeat: bool,
    expiry: Option<Instant>,
    last: i64,
    /// Chunks the next replay page reads, sized by the chunks of the page before.
    page: i64,
    /// Counts this stream against its key's cap while it is open.
    _permit: StreamPermit,
    /// The trace span of the stream, from its answer to its end.
    _span: tracing::Span,
}

/// What the live phase ended with.
enum Next {
    /// Re-read the store (after a gap, lag or the end).
    Replay,
    /// Stop with this final event.
    Stop(Bytes),
}

impl Follower {
    fn events(mut self) -> impl Stream<Item = Bytes> {
        async_stream::stream! {
            loop {
                // Read the state first: output is persisted before the terminal state, so a
                // state seen as terminal here means the replay below is complete.
                let ended = match self.terminal_state().await {
                    Ok(ended) => ended,
                    Err(e) => {
                        tracing::error!(request_id = %self.request_id, error = %e, "stream state lookup failed");
                        yield store_error_event(&e);
                        return;
                    }
                };
                loop {
                    match self.state.store.output_after(&self.id, self.last, self.page).await {
                        Ok(chunks) => {
                            let full = chunks.len() as i64 == self.page;
                            self.page = next_page(&chunks);
                            let mut page = Vec::new();
                            for chunk in &chunks {
                                self.last = chunk.seq;
                                push_chunk(&mut page, chunk);
                            }
                            if !page.is_empty() {
                                yield Bytes::from(page);
                            }
                            if !full { break; }
                        }
                        Err(e) => {
                            tracing::error!(request_id = %self.request_id, error = %e, "stream replay failed");
                            yield store_error_event(&e);
                            return;
                        }
                    }
                }
                if let Some((state, exit_code, reason)) = ended {
                    yield end_event(state, exit_code, reason.as_deref());
                    return;
                }
                loop {
                    match self.follow_one().await {
                        Ok(Some(event)) => yield event,
                        Ok(None) => {}
                        Err(Next::Replay) => break,
                        Err(Next::Stop(event)) => {
                            yield event;
                            return;
                        }
                    }
                }
            }
        }
    }

    /// The command's terminal state, exit code and reason, if it has ended.
    async fn terminal_state(&self) -> StoreResult<Option<(CommandState, Option<i32>, Option<String>)>> {
        let cmd = self.state.store.get_command(&self.id).await?;
        Ok(cmd
            .filter(|c| c.state.is_terminal())
            .map(|c| (c.state, c.exit_code, c.reason)))
    }

    /// Waits for the next live event, or for the key to stop being valid.
    async fn follow_one(&mut self) -> Result<Option<Bytes>, Next> {
        let key = self.caller.principal.key.clone();
        loop {
            // Checks in this order: a revoked or expired key wins over pending output, and output
            // (including the end of the command) wins over shutdown, so a stream whose command
            // ended before the gateway stopped still ends with its `end` event.
            tokio::select! {
                biased;
                revoked = self.revocations.recv() => {
                    if matches!(revoked, Ok(ref id) if *id == key.id) {
                        return Err(Next::Stop(error_event("unauthorized", "API key revoked")));
                    }
                }
                () = sleep_until(self.expiry) => return Err(Next::Stop(error_event("unauthorized", "API key expired"))),
                _ = self.recheck.tick() => {
                    match self.state.auth.still_valid(&key.id).await {
                        // Also the fallback for a notice from another replica that never came;
                        // alone, every chunk comes through the local hub.
                        Ok(()) if self.state.replica.live_replicas() > 1 => return Err(Next::Replay),
                        Ok(()) => {}
                        Err(AuthError::Unavailable) => return Err(Next::Stop(unavailable_event())),
                        Err(e) => return Err(Next::Stop(error_event("unauthorized", &e.to_string()))),
                    }
                }
                Ok(()) = self.heartbeats.changed() => {
                    // A stream that sent something since the last heartbeat is not idle.
                    if !std::mem::take(&mut self.sent_since_heartbeat) {
                        return Ok(Some(Bytes::from_static(HEARTBEAT_COMMENT)));
                    }
                }
                event = self.live.recv() => return match event {
                    Ok(StreamEvent::Output(live)) if live.chunk.seq <= self.last => Ok(None),
                    Ok(StreamEvent::Output(live)) if live.chunk.seq == self.last + 1 => {
                        self.last = live.chunk.seq;
                        self.sent_since_heartbeat = true;
                        Ok(Some(live.frame(output_event)))
                    }
                    Ok(StreamEvent::Stored(seq)) if seq <= self.last => Ok(None),
                    Ok(StreamEvent::Output(_) | StreamEvent::Stored(_)) | Err(RecvError::Lagged(_)) => Err(Next::Replay),
                    Ok(StreamEvent::End { .. }) | Err(RecvError::Closed) => {
                        self.live.renew();
                        Err(Next::Replay)
                    }
                },
                () = self.state.shutdown.cancelled() => {
                    return Err(Next::Stop(error_event("shutting_down", "the gateway is shutting down")));
                }
            }
        }
    }
}

/// How many chunks the page after `chunks` reads: as many as fit [`REPLAY_PAGE_BYTES`] at
/// their average size, between 1 and [`REPLAY_PAGE`].
fn next_page(chunks: &[crate::store::OutputChunk]) -> i64 {
    let bytes: usize = chunks.iter().map(|c| c.text.len()).sum();
    let average = (bytes / chunks.len().max(1)).max(1);
    i64::try_from(REPLAY_PAGE_BYTES / average)
        .unwrap_or(REPLAY_PAGE)
        .clamp(1, REPLAY_PAGE)
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::OutputChunk;

    fn chunks(n: usize, bytes: usize) -> Vec<OutputChunk> {
        (1..=n)
            .map(|seq| OutputChunk {
                command_id: "c".into(),
                seq: seq as i64,
                stream: "stdout".into(),
                text: "x".repeat(bytes),
            })
            .collect()
    }

    #[test]
    fn replay_pages_hold_about_a_bounded_number_of_bytes() {
        assert_eq!(next_page(&chunks(32, 64 * 1024)), 64, "4 MiB of 64 KiB chunks");
        assert_eq!(next_page(&chunks(32, 10)), REPLAY_PAGE, "small chunks: a full page");
        assert_eq!(next_page(&chunks(1, 8 * 1024 * 1024)), 1, "at least one chunk");
        assert_eq!(next_page(&[]), REPLAY_PAGE);
    }
}
