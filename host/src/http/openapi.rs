//! The OpenAPI document: what the handlers declare, completed with what the pipeline adds to
//! every route (bearer authentication, rate limits, the error envelope of each refusal).

use utoipa::openapi::header::{Header, HeaderBuilder};
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr, Response, ResponseBuilder, Type};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "rdev", description = "Gateway for remote development: run commands in project workspaces and stream their output."),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    components(schemas(super::error::ErrorBody))
)]
pub(super) struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let bearer = |description: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(description))
                    .build(),
            )
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", bearer("An API key (`rdev_…`)"));
        components.add_security_scheme(
            "run_credential",
            bearer("The credential of one `claude` run (`rdh_…`), in its process's `RDEV_HOOK_TOKEN`"),
        );
    }
}

/// Answers the pipeline and the extractors may give on any `/v1` route, besides the handler's.
const API_ERRORS: [(&str, &str); 4] = [
    ("401", "No valid bearer token"),
    ("403", "The key lacks the scope, the project or the network"),
    (
        "429",
        "A limit of the key, or of the client's address after failed authentications; see `Retry-After`",
    ),
    ("503", "A dependency is unavailable for now; see `Retry-After`"),
];

/// Answers of any route that takes a JSON body.
const BODY_ERRORS: [(&str, &str); 4] = [
    ("400", "The body is not JSON"),
    ("413", "The body is larger than the configured limit"),
    ("415", "The body is not `application/json`"),
    ("422", "The body does not match the schema, or a validator refused it"),
];

const RATE_HEADERS: [(&str, &str); 3] = [
    (
        "X-RateLimit-Limit",
        "Requests the key's bucket holds when full (its burst)",
    ),
    ("X-RateLimit-Remaining", "Requests that may still be made at once"),
    ("X-RateLimit-Reset", "Seconds until the bucket is full again"),
];

fn integer_header(description: &str) -> Header {
    HeaderBuilder::new()
        .schema(utoipa::openapi::ObjectBuilder::new().schema_type(Type::Integer))
        .description(Some(description))
        .build()
}

fn error_response(description: &str) -> RefOr<Response> {
    let json = Content::new(Some(Ref::from_schema_name("ErrorBody")));
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content("application/json", json)
            .build(),
    )
}

/// Adds to every `/v1` operation the errors the pipeline may answer, the rate-limit headers of
/// every answer, and to every operation the 500 of a handler that failed.
pub(super) fn complete(doc: &mut utoipa::openapi::OpenApi) {
    for (path, item) in doc.paths.paths.iter_mut() {
        let api = path.starts_with("/v1/");
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            complete_operation(operation, api);
        }
    }
}

fn complete_operation(operation: &mut Operation, api: bool) {
    let has_body = operation.request_body.is_some();
    let responses = &mut operation.responses.responses;
    let mut add = |status: &str, description: &str| {
        responses
            .entry(status.to_owned())
            .or_insert_with(|| error_response(description));
    };
    add(
        "500",
        "The handler failed; the cause is in the gateway's log under the request id",
    );
    if api {
        let body_errors = if has_body { &BODY_ERRORS[..] } else { &[] };
        for (status, description) in API_ERRORS.iter().chain(body_errors) {
            add(status, description);
        }
    }
    for (status, response) in responses.iter_mut() {
        let RefOr::T(response) = response else { continue };
        if matches!(status.as_str(), "429" | "503") {
            let retry = integer_header("Seconds to wait before retrying");
            response.headers.entry("Retry-After".to_owned()).or_insert(retry);
        }
        if api {
            for (name, description) in RATE_HEADERS {
                response.headers.insert(name.to_owned(), integer_header(description));
            }
        }
    }
}
