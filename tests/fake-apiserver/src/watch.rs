//! Watch streams: newline-delimited `WatchEvent` JSON over a chunked response, replayed from the
//! change log and then live, filtered per watcher the way the real server's watch cache does.

use std::borrow::Cow;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use http_body_util::{BodyExt, StreamBody};
use hyper::Response;
use hyper::body::Frame;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::WatchEvent;
use serde_json::Value;

use crate::http::{Body, Query, status_response};
use crate::objects::Kind;
use crate::selectors::Filter;
use crate::shared::Shared;
use crate::status;
use crate::store::{Change, Event};

/// One watch request, decoded.
struct Watch {
    kind: Kind,
    filter: Filter,
    /// Events after this resource version are sent; `None` means "from now".
    since: Option<u64>,
    /// Synthetic ADDED events for the current objects come first.
    initial_events: bool,
    /// Those are followed by a bookmark annotated `k8s.io/initial-events-end` (a streaming list).
    end_bookmark: bool,
    timeout: Option<Duration>,
}

/// Answers `?watch=true`: 200 with a streaming body, or 400 for a malformed resourceVersion.
pub(crate) fn respond(shared: Arc<Shared>, kind: Kind, filter: Filter, query: &Query) -> Response<Body> {
    let since = match query.get("resourceVersion").filter(|rv| !rv.is_empty() && *rv != "0") {
        Some(rv) => match rv.parse() {
            Ok(rv) => Some(rv),
            Err(_) => return status_response(&status::bad_request(format!("invalid resource version: {rv:?}"))),
        },
        None => None,
    };
    let end_bookmark = query.flag("sendInitialEvents");
    let watch = Watch {
        kind,
        filter,
        since,
        // The real server sends the current state first when no resourceVersion (or "0") is given,
        // unless sendInitialEvents=false says otherwise.
        initial_events: since.is_none() && query.get("sendInitialEvents") != Some("false"),
        end_bookmark,
        timeout: query
            .get("timeoutSeconds")
            .and_then(|t| t.parse().ok())
            .map(Duration::from_secs),
    };
    let body = StreamBody::new(events(shared, watch).map(|line| Ok::<_, Infallible>(Frame::data(line))));
    let mut response = Response::new(body.boxed_unsync());
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// The lines of one watch; it ends on timeout, outage or shutdown.
fn events(shared: Arc<Shared>, watch: Watch) -> impl Stream<Item = Bytes> + Send {
    async_stream::stream! {
        // Subscribe before reading the log so that no change falls between the two.
        let mut changed = shared.store.subscribe();
        let mut down = shared.down.subscribe();
        let deadline = tokio::time::sleep(watch.timeout.unwrap_or(Duration::MAX));
        tokio::pin!(deadline);
        let (mut cursor, initial) = start(&shared, &watch);
        for line in initial {
            yield line;
        }
        loop {
            let events = {
                let objects = shared.store.lock();
                let events = objects.events_after(cursor);
                cursor = objects.rv();
                events
            };
            for line in events.iter().filter_map(|event| translate(event, &watch)) {
                yield line;
            }
            tokio::select! {
                changed = changed.changed() => if changed.is_err() { break },
                _ = down.wait_for(|down| *down) => break,
                () = &mut deadline => break,
                () = shared.shutdown.cancelled() => break,
            }
        }
    }
}

/// The resource version to continue from, and the synthetic initial lines if the watch wants them.
fn start(shared: &Shared, watch: &Watch) -> (u64, Vec<Bytes>) {
    let objects = shared.store.lock();
    let rv = watch.since.unwrap_or(objects.rv());
    if !watch.initial_events {
        return (rv, Vec::new());
    }
    let current = objects.list(watch.kind, &watch.filter);
    let mut lines: Vec<Bytes> = current.iter().map(|o| line(&WatchEvent::Added(&o.json))).collect();
    if watch.end_bookmark {
        lines.push(initial_events_end(watch.kind, rv));
    }
    (rv, lines)
}

/// What this watcher sees of a change: objects entering or leaving its selection are ADDED or DELETED.
fn translate(event: &Event, watch: &Watch) -> Option<Bytes> {
    if event.object.kind != watch.kind {
        return None;
    }
    let selected_now = event.change != Change::Deleted && watch.filter.matches(&event.object);
    let selected_before = event.previous.as_ref().is_some_and(|p| watch.filter.matches(p));
    let object = Cow::Borrowed(&event.object.json);
    let watch_event = match (selected_before, selected_now) {
        (false, true) => WatchEvent::Added(object),
        (true, true) => WatchEvent::Modified(object),
        (true, false) if event.change == Change::Deleted => WatchEvent::Deleted(object),
        // Like the real server: the last version that matched, stamped with this change's version.
        (true, false) => {
            let previous = event.previous.as_ref().expect("selected before, so it existed");
            WatchEvent::Deleted(Cow::Owned(previous.at_version(event.rv).json))
        }
        (false, false) => return None,
    };
    Some(line(&watch_event))
}

fn line<T: k8s_openapi::serde::Serialize>(event: &WatchEvent<T>) -> Bytes {
    let mut bytes = serde_json::to_vec(event).expect("watch events serialize");
    bytes.push(b'\n');
    bytes.into()
}

/// The bookmark that ends a streaming list. Written by hand: kube-rs requires `kind` and `apiVersion`
/// in a bookmark object, which k8s-openapi's `WatchEvent::Bookmark` leaves out.
fn initial_events_end(kind: Kind, rv: u64) -> Bytes {
    let event: Value = serde_json::json!({
        "type": "BOOKMARK",
        "object": {
            "kind": kind.name(),
            "apiVersion": "v1",
            "metadata": {
                "resourceVersion": rv.to_string(),
                "annotations": { "k8s.io/initial-events-end": "true" },
            },
        },
    });
    let mut bytes = serde_json::to_vec(&event).expect("JSON values serialize");
    bytes.push(b'\n');
    bytes.into()
}
