//! The HTTP/1.1 server: accepting connections, routing, and the read-only object endpoints.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use k8s_openapi::apimachinery::pkg::version::Info;
use tokio::net::{TcpListener, TcpStream};

use crate::objects::Kind;
use crate::selectors::{Filter, parse_fields, parse_labels};
use crate::shared::Shared;
use crate::{exec, status, watch};

pub(crate) type Body = UnsyncBoxBody<Bytes, Infallible>;

/// Accepts connections until the server shuts down.
pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shared.shutdown.cancelled() => return,
        };
        match accepted {
            Ok((stream, _)) => drop(tokio::spawn(connection(stream, shared.clone()))),
            Err(error) => tracing::debug!(%error, "fake API server: accept failed"),
        }
    }
}

async fn connection(stream: TcpStream, shared: Arc<Shared>) {
    let shutdown = shared.shutdown.clone();
    let service = service_fn(move |request| {
        let shared = shared.clone();
        async move { Ok::<_, Infallible>(route(shared, request)) }
    });
    // `with_upgrades` hands the socket over to the exec websocket after the 101 response.
    let connection = http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::select! {
        _ = connection => {}
        () = shutdown.cancelled() => {}
    }
}

fn route(shared: Arc<Shared>, request: Request<Incoming>) -> Response<Body> {
    shared.requests.fetch_add(1, Ordering::Relaxed);
    if shared.is_down() {
        return status_response(&status::unavailable());
    }
    let path = request.uri().path().to_owned();
    let query = Query::parse(request.uri().query());
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let get = request.method() == Method::GET;
    match (segments.as_slice(), get) {
        (["version"], true) => json_response(StatusCode::OK, &version()),
        (["api", "v1", plural], true) => collection(&shared, plural, None, &query),
        (["api", "v1", "namespaces", ns, plural], true) => collection(&shared, plural, Some(ns), &query),
        (["api", "v1", "namespaces", ns, plural, name], true) => object(&shared, plural, ns, name),
        // The real server accepts both; kube-rs sends GET.
        (["api", "v1", "namespaces", ns, "pods", name, "exec"], _) if get || request.method() == Method::POST => {
            let (ns, name) = (ns.to_string(), name.to_string());
            exec::handle(shared, request, &ns, &name, &query)
        }
        _ => status_response(&status::failure(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )),
    }
}

fn version() -> Info {
    Info {
        major: "1".into(),
        minor: "37".into(),
        git_version: "v1.37.0-fake".into(),
        git_commit: "0000000000000000000000000000000000000000".into(),
        git_tree_state: "clean".into(),
        build_date: "2026-01-01T00:00:00Z".into(),
        go_version: "go1.25.0".into(),
        compiler: "gc".into(),
        platform: "linux/amd64".into(),
        ..Info::default()
    }
}

/// A list, or a watch with `watch=true`.
fn collection(shared: &Arc<Shared>, plural: &str, namespace: Option<&str>, query: &Query) -> Response<Body> {
    let Some(kind) = Kind::from_plural(plural) else {
        return unknown_resource(plural);
    };
    let filter = match filter(namespace, query) {
        Ok(filter) => filter,
        Err(message) => return status_response(&status::bad_request(message)),
    };
    if query.flag("watch") {
        return watch::respond(shared.clone(), kind, filter, query);
    }
    let objects = shared.store.lock();
    let items = objects.list(kind, &filter);
    json_response(StatusCode::OK, &crate::store::list_json(kind, objects.rv(), &items))
}

fn filter(namespace: Option<&str>, query: &Query) -> Result<Filter, String> {
    Ok(Filter {
        namespace: namespace.map(str::to_string),
        labels: parse_labels(query.get("labelSelector").unwrap_or_default())?,
        fields: parse_fields(query.get("fieldSelector").unwrap_or_default())?,
    })
}

fn object(shared: &Shared, plural: &str, namespace: &str, name: &str) -> Response<Body> {
    let Some(kind) = Kind::from_plural(plural) else {
        return unknown_resource(plural);
    };
    match shared.store.lock().get(kind, namespace, name) {
        Some(object) => json_response(StatusCode::OK, &object.json),
        None => status_response(&status::not_found(plural, name)),
    }
}

fn unknown_resource(plural: &str) -> Response<Body> {
    status_response(&status::failure(
        404,
        "NotFound",
        format!("the server could not find the requested resource ({plural})"),
    ))
}

/// Query parameters in order, repeated keys kept (exec's `command` repeats).
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    fn parse(query: Option<&str>) -> Self {
        Self(
            form_urlencoded::parse(query.unwrap_or_default().as_bytes())
                .into_owned()
                .collect(),
        )
    }

    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    pub(crate) fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// A boolean parameter as Go's `strconv.ParseBool` reads the usual spellings.
    pub(crate) fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1" | "True" | "TRUE" | "t" | "T"))
    }
}

pub(crate) fn json_response(code: StatusCode, value: &impl k8s_openapi::serde::Serialize) -> Response<Body> {
    let bytes = serde_json::to_vec(value).expect("JSON values serialize");
    let mut response = Response::new(Full::new(Bytes::from(bytes)).boxed_unsync());
    *response.status_mut() = code;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// An error response: the Status as body, its `code` as HTTP status.
pub(crate) fn status_response(status: &Status) -> Response<Body> {
    let code = status
        .code
        .and_then(|c| u16::try_from(c).ok())
        .and_then(|c| StatusCode::from_u16(c).ok());
    json_response(code.unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), status)
}
