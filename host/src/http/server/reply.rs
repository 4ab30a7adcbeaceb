//! Answers given below the router, with the same JSON envelope as every other error: the shed
//! mode's 503, the 408 for a request head that did not arrive in time, and hyper's own answers
//! to requests it could not parse (400, 414, 431), which it sends with an empty body.

use axum::body::Body;
use axum::http::{HeaderValue, Response, StatusCode, header};

use super::super::error::ApiError;
use super::super::request_id::{REQUEST_ID_HEADER, new_request_id};

/// Seconds a shed client is asked to wait before retrying.
const SHED_RETRY_AFTER_SECS: u32 = 1;

/// 503 for a request on a connection served in shed mode.
pub(super) fn shed() -> Response<Body> {
    let id = new_request_id();
    let message = "the gateway is at its connection limit; retry shortly";
    let mut response =
        ApiError::unavailable("unavailable", message, SHED_RETRY_AFTER_SECS).into_response_for(id.clone());
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    if let Ok(value) = HeaderValue::from_str(&id) {
        headers.insert(REQUEST_ID_HEADER, value);
    }
    response
}

/// The whole 408 response for a request head that did not arrive in time.
pub(super) fn header_timeout() -> Vec<u8> {
    let date = format!("date: {}", httpdate::fmt_http_date(std::time::SystemTime::now()));
    raw(
        StatusCode::REQUEST_TIMEOUT,
        "HTTP/1.1 408 Request Timeout",
        &[&date],
        "header_timeout",
        "the request headers did not arrive in time",
    )
}

/// If `written` is a bodiless 4xx/5xx response head that hyper produced by itself, the same
/// response with the envelope. Our application never sends an error without the envelope nor
/// without a request id, so such a head can only be hyper's.
pub(super) fn rewrite_hyper_error(written: &[u8]) -> Option<Vec<u8>> {
    let rest = written.strip_prefix(b"HTTP/1.")?;
    if !matches!(rest.get(2), Some(b'4' | b'5')) || !written.ends_with(b"\r\n\r\n") {
        return None;
    }
    let head = std::str::from_utf8(&written[..written.len() - 4]).ok()?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let status = StatusCode::from_bytes(status_line.split(' ').nth(1)?.as_bytes()).ok()?;
    let headers: Vec<&str> = lines.collect();
    let named = |h: &&str, name: &str| h.split(':').next().is_some_and(|n| n.trim().eq_ignore_ascii_case(name));
    let bodiless = headers
        .iter()
        .any(|h| named(h, "content-length") && h.split(':').nth(1).is_some_and(|v| v.trim() == "0"));
    if !bodiless || headers.iter().any(|h| named(h, REQUEST_ID_HEADER)) {
        return None;
    }
    let kept: Vec<&str> = headers
        .into_iter()
        .filter(|h| !named(h, "content-length") && !named(h, "connection"))
        .collect();
    let (code, message) = describe(status.as_u16());
    Some(raw(status, status_line, &kept, code, message))
}

fn describe(status: u16) -> (&'static str, &'static str) {
    match status {
        400 => ("bad_request", "the request could not be parsed"),
        414 => ("uri_too_long", "the request URI is too long"),
        431 => ("headers_too_large", "the request headers are too large or too many"),
        500.. => ("internal", "internal error"),
        _ => ("bad_request", "the request was refused"),
    }
}

/// A response that closes the connection, with the envelope and a fresh request id.
fn raw(status: StatusCode, status_line: &str, headers: &[&str], code: &'static str, message: &str) -> Vec<u8> {
    let id = new_request_id();
    let body = ApiError::new(status, code, message).envelope_text(&id);
    let mut out = format!("{status_line}\r\n");
    for header in headers {
        out.push_str(header);
        out.push_str("\r\n");
    }
    out.push_str(&format!(
        "content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n{REQUEST_ID_HEADER}: {id}\r\n\r\n{body}",
        body.len()
    ));
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_only_bodiless_error_heads_without_a_request_id() {
        // Exactly what hyper 1.12 writes for too many headers.
        let hyper = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\ndate: Tue, 01 Dec 2026 23:41:41 GMT\r\n\r\n";
        let out = String::from_utf8(rewrite_hyper_error(hyper).unwrap()).unwrap();
        assert!(
            out.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\ndate: "),
            "{out}"
        );
        assert!(out.contains("\"code\":\"headers_too_large\""), "{out}");
        assert_eq!(out.matches("connection: close\r\n").count(), 1, "{out}");
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}", body.len())), "{out}");
        let ours = b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nx-request-id: abc\r\n\r\n";
        assert!(rewrite_hyper_error(ours).is_none());
        let with_body = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\n\r\n{}";
        assert!(rewrite_hyper_error(with_body).is_none());
        let fine = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        assert!(rewrite_hyper_error(fine).is_none());
    }
}
