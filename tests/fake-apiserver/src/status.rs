//! `metav1.Status` objects: HTTP error bodies and the result an exec reports on its status channel.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Status, StatusCause, StatusDetails};

/// A failure `Status` with an HTTP code, as the API server puts in 4xx/5xx bodies.
pub(crate) fn failure(code: u16, reason: &str, message: impl Into<String>) -> Status {
    Status {
        status: Some("Failure".into()),
        code: Some(code.into()),
        reason: Some(reason.into()),
        message: Some(message.into()),
        ..Status::default()
    }
}

/// `pods "x" not found`, with the details the real server adds.
pub(crate) fn not_found(plural: &str, name: &str) -> Status {
    let details = StatusDetails {
        name: Some(name.into()),
        kind: Some(plural.into()),
        ..StatusDetails::default()
    };
    Status {
        details: Some(details),
        ..failure(404, "NotFound", format!("{plural} {name:?} not found"))
    }
}

pub(crate) fn bad_request(message: impl Into<String>) -> Status {
    failure(400, "BadRequest", message)
}

pub(crate) fn unavailable() -> Status {
    failure(503, "ServiceUnavailable", "the fake API server is down")
}

/// What `apierrors.NewInternalError` gives: code 500, the message also as the one cause.
pub(crate) fn internal_error(message: String) -> Status {
    let cause = StatusCause {
        message: Some(message.clone()),
        ..StatusCause::default()
    };
    Status {
        details: Some(StatusDetails {
            causes: Some(vec![cause]),
            ..StatusDetails::default()
        }),
        ..failure(500, "InternalError", format!("Internal error occurred: {message}"))
    }
}

/// What the status channel carries when the command exited 0.
pub(crate) fn exec_success() -> Status {
    Status {
        status: Some("Success".into()),
        ..Status::default()
    }
}

/// What the status channel carries for a non-zero exit: the code is in the `ExitCode` cause.
pub(crate) fn exec_exit_code(command: &[String], code: i32) -> Status {
    let message = format!(
        "command terminated with non-zero exit code: error executing command [{}], exit code {code}",
        command.join(" ")
    );
    let cause = StatusCause {
        reason: Some("ExitCode".into()),
        message: Some(code.to_string()),
        field: None,
    };
    Status {
        status: Some("Failure".into()),
        message: Some(message),
        reason: Some("NonZeroExitCode".into()),
        details: Some(StatusDetails {
            causes: Some(vec![cause]),
            ..StatusDetails::default()
        }),
        ..Status::default()
    }
}
