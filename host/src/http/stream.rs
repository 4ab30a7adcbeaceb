//! `GET /v1/commands/{id}/stream`: Server-Sent Events of a command's output. Replays from the
//! store after `Last-Event-ID`, then follows live with no gap and no duplicate, and ends with an
//! `end` event. Output text travels JSON-encoded, so it can never forge SSE fields. The stream
//! closes as soon as the caller's key is revoked or expires.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde::Deserialize;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::time::Instant;

use super::AppState;
use super::commands::visible_command;
use super::context::Caller;
use super::error::ApiError;
use super::extract::{Path, Query};
use crate::store::{CommandState, StoreResult};
use crate::streaming::{OutputHub, StreamEvent};

const REPLAY_PAGE: i64 = 1000;
const HEARTBEAT: Duration = Duration::from_secs(10);
const KEY_RECHECK: Duration = Duration::from_secs(5);

/// Query parameters of the stream (for clients that cannot set headers, such as `EventSource`).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
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
    responses((status = 200, description = "text/event-stream: `output` events (id = seq), then one `end` event"),
              (status = 400, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
pub async fn stream_output(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(params): Query<StreamParams>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    caller.require("commands:read")?;
    let after = parse_last_event_id(&headers, &params)?;
    let cmd = visible_command(&state, &caller, &id).await?;
    let expiry = caller.principal.key.expires_at.map(|at| {
        let left = u64::try_from(at - crate::time::now_ms()).unwrap_or(0);
        Instant::now() + Duration::from_millis(left)
    });
    let follower = Follower {
        live: Subscription::new(&state.hub, &cmd.id),
        revocations: state.auth.revocations(),
        recheck: tokio::time::interval_at(Instant::now() + KEY_RECHECK, KEY_RECHECK),
        expiry,
        state,
        caller,
        id: cmd.id,
        last: after,
    };
    Ok(Sse::new(follower.events()).keep_alive(KeepAlive::new().interval(HEARTBEAT)))
}

/// A live subscription that frees the command's channel when the stream goes away.
struct Subscription {
    hub: OutputHub,
    id: String,
    rx: Option<broadcast::Receiver<StreamEvent>>,
}

impl Subscription {
    fn new(hub: &OutputHub, id: &str) -> Self {
        Self {
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
    }
}

struct Follower {
    state: AppState,
    caller: Caller,
    id: String,
    live: Subscription,
    revocations: broadcast::Receiver<String>,
    recheck: tokio::time::Interval,
    expiry: Option<Instant>,
    last: i64,
}

fn output_event(chunk: &crate::store::OutputChunk) -> Event {
    Event::default()
        .event("output")
        .id(chunk.seq.to_string())
        .json_data(chunk)
        .unwrap_or_default()
}

fn end_event(state: CommandState, exit_code: Option<i32>) -> Event {
    let data = serde_json::json!({ "state": state, "exit_code": exit_code });
    Event::default().event("end").json_data(data).unwrap_or_default()
}

fn error_event(code: &str, message: &str) -> Event {
    let data = serde_json::json!({ "code": code, "message": message });
    Event::default().event("error").json_data(data).unwrap_or_default()
}

/// What the live phase ended with.
enum Next {
    /// Re-read the store (after a gap, lag or the end).
    Replay,
    /// Stop with this final event.
    Stop(Event),
}

impl Follower {
    fn events(mut self) -> impl Stream<Item = Result<Event, Infallible>> {
        async_stream::stream! {
            loop {
                // Read the state first: output is persisted before the terminal state, so a
                // state seen as terminal here means the replay below is complete.
                let ended = match self.terminal_state().await {
                    Ok(ended) => ended,
                    Err(e) => {
                        tracing::error!(error = %e, "stream state lookup failed");
                        yield Ok(error_event("internal", "internal error"));
                        return;
                    }
                };
                loop {
                    match self.state.store.output_after(&self.id, self.last, REPLAY_PAGE).await {
                        Ok(chunks) => {
                            let full = chunks.len() as i64 == REPLAY_PAGE;
                            for chunk in chunks {
                                self.last = chunk.seq;
                                yield Ok(output_event(&chunk));
                            }
                            if !full { break; }
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "stream replay failed");
                            yield Ok(error_event("internal", "internal error"));
                            return;
                        }
                    }
                }
                if let Some((state, exit_code)) = ended {
                    yield Ok(end_event(state, exit_code));
                    return;
                }
                loop {
                    match self.follow_one().await {
                        Ok(Some(event)) => yield Ok(event),
                        Ok(None) => {}
                        Err(Next::Replay) => break,
                        Err(Next::Stop(event)) => {
                            yield Ok(event);
                            return;
                        }
                    }
                }
            }
        }
    }

    async fn terminal_state(&self) -> StoreResult<Option<(CommandState, Option<i32>)>> {
        let cmd = self.state.store.get_command(&self.id).await?;
        Ok(cmd.filter(|c| c.state.is_terminal()).map(|c| (c.state, c.exit_code)))
    }

    /// Waits for the next live event, or for the key to stop being valid.
    async fn follow_one(&mut self) -> Result<Option<Event>, Next> {
        let key = self.caller.principal.key.clone();
        loop {
            tokio::select! {
                event = self.live.recv() => return match event {
                    Ok(StreamEvent::Output(chunk)) if chunk.seq <= self.last => Ok(None),
                    Ok(StreamEvent::Output(chunk)) if chunk.seq == self.last + 1 => {
                        self.last = chunk.seq;
                        Ok(Some(output_event(&chunk)))
                    }
                    Ok(StreamEvent::Output(_)) | Err(RecvError::Lagged(_)) => Err(Next::Replay),
                    Ok(StreamEvent::End { .. }) | Err(RecvError::Closed) => {
                        self.live.renew();
                        Err(Next::Replay)
                    }
                },
                revoked = self.revocations.recv() => {
                    if matches!(revoked, Ok(ref id) if *id == key.id) {
                        return Err(Next::Stop(error_event("unauthorized", "API key revoked")));
                    }
                }
                () = self.state.shutdown.cancelled() => {
                    return Err(Next::Stop(error_event("shutting_down", "the gateway is shutting down")));
                }
                () = sleep_until(self.expiry) => return Err(Next::Stop(error_event("unauthorized", "API key expired"))),
                _ = self.recheck.tick() => {
                    if let Err(e) = self.state.auth.still_valid(&key.id).await {
                        return Err(Next::Stop(error_event("unauthorized", &e.to_string())));
                    }
                }
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
