//! The API client of the client subcommands: the gateway's URL and a token from `--url`/`RDEV_URL`
//! and `--token`/`RDEV_TOKEN`, requests in JSON, and errors that show the API's message and
//! request id.

use clap::Args;
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// The gateway's address when nothing names one: `rdev serve`'s default.
const DEFAULT_URL: &str = "http://127.0.0.1:8080";

/// Where the gateway is and who calls it.
#[derive(Debug, Clone, Args)]
pub(super) struct ClientArgs {
    /// The gateway's URL (default: the profile's, else http://127.0.0.1:8080).
    #[arg(long, env = "RDEV_URL", global = true)]
    url: Option<String>,
    /// An API key's token.
    #[arg(long, env = "RDEV_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
}

/// A gateway to call.
#[derive(Clone)]
pub(super) struct Client {
    http: reqwest::Client,
    url: String,
    token: String,
}

/// A call that failed: the API's error, or no answer at all.
#[derive(Debug, thiserror::Error)]
pub(super) enum CallFailed {
    /// The API answered with its error envelope (or a status without one).
    #[error("{message} ({code}, HTTP {status}{})", request_id.as_ref().map(|r| format!(", request {r}")).unwrap_or_default())]
    Api {
        /// HTTP status.
        status: StatusCode,
        /// The error code.
        code: String,
        /// The message.
        message: String,
        /// The request id, to quote to an operator.
        request_id: Option<String>,
    },
    /// The gateway could not be reached, or the connection broke.
    #[error("cannot reach the gateway: {0}")]
    Unreachable(String),
}

impl CallFailed {
    /// Whether trying again later may help (no answer, or a 503 or 429).
    pub(super) fn retryable(&self) -> bool {
        match self {
            Self::Unreachable(_) => true,
            Self::Api { status, .. } => {
                matches!(*status, StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS)
            }
        }
    }
}

impl Client {
    /// A client from the arguments, else the profile `rdev login` saved; a token is required.
    pub(super) fn new(args: &ClientArgs) -> anyhow::Result<Self> {
        let saved = super::profile::load()?;
        let token = args.token.clone().or(saved.token).filter(|t| !t.is_empty()).ok_or_else(|| {
            anyhow::anyhow!("no API key: set RDEV_TOKEN, pass --token or run `rdev login` (create a key with `rdev keys create`)")
        })?;
        let url = args.url.clone().or(saved.url).unwrap_or_else(|| DEFAULT_URL.to_owned());
        Ok(Self::with(&url, &token))
    }

    /// A client of `url` with `token`.
    pub(super) fn with(url: &str, token: &str) -> Self {
        Self {
            http: crate::http_client(),
            url: url.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
        }
    }

    /// A request to `path`, authenticated.
    pub(super) fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.token)
    }

    /// Sends a request and reads its JSON answer, or the API's error.
    pub(super) async fn send(&self, request: reqwest::RequestBuilder) -> Result<Value, CallFailed> {
        let response = request
            .send()
            .await
            .map_err(|e| CallFailed::Unreachable(e.without_url().to_string()))?;
        let status = response.status();
        let request_id = response
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = response
            .text()
            .await
            .map_err(|e| CallFailed::Unreachable(e.without_url().to_string()))?;
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(body);
        }
        let error = &body["error"];
        Err(CallFailed::Api {
            status,
            code: error["code"].as_str().unwrap_or("http_error").to_owned(),
            message: error["message"]
                .as_str()
                .map_or_else(|| status.to_string(), str::to_owned),
            request_id: error["request_id"].as_str().map(str::to_owned).or(request_id),
        })
    }
}
