//! Authentication and authorization: API keys (bearer tokens), scopes, project allowlists and
//! client networks. Key material never enters a log line, an error or the audit log.

mod client_ip;
mod keys;
mod token;

pub use client_ip::{client_ip, net_contains};
pub use keys::{Authenticator, NewKey};
pub use token::TokenHasher;

use std::net::IpAddr;
use std::sync::Arc;

use crate::store::KeyRecord;

/// Permissions a key can carry. `admin` implies all others.
pub const SCOPES: [&str; 9] = [
    "projects:read",
    "commands:run",
    "commands:read",
    "config:write",
    "audit:read",
    "metrics:read",
    "webhooks:read",
    "webhooks:write",
    "admin",
];

/// Why a request was not authenticated or not authorized.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    /// No `Authorization: Bearer` header.
    #[error("missing bearer token")]
    Missing,
    /// The token is malformed, unknown or wrong.
    #[error("invalid API key")]
    Invalid,
    /// The key was revoked.
    #[error("API key revoked")]
    Revoked,
    /// The key expired.
    #[error("API key expired")]
    Expired,
    /// The client address is outside the key's networks.
    #[error("API key not allowed from this address")]
    Network,
    /// The key lacks a scope.
    #[error("API key lacks scope `{0}`")]
    Scope(&'static str),
    /// The key store could not be read.
    #[error("key store unavailable")]
    Unavailable,
}

impl AuthError {
    /// A short label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Invalid => "invalid",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
            Self::Network => "network",
            Self::Scope(_) => "scope",
            Self::Unavailable => "unavailable",
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The key used.
    pub key: Arc<KeyRecord>,
    /// Client address (after trusted-proxy resolution).
    pub client_ip: IpAddr,
}

impl Principal {
    /// Whether the key has `scope` (or `admin`).
    pub fn has(&self, scope: &str) -> bool {
        self.key.scopes.iter().any(|s| s == scope || s == "admin")
    }

    /// Fails unless the key has `scope`.
    pub fn require(&self, scope: &'static str) -> Result<(), AuthError> {
        if self.has(scope) {
            Ok(())
        } else {
            Err(AuthError::Scope(scope))
        }
    }

    /// Whether the key may see a project.
    pub fn can_see(&self, project: &str) -> bool {
        self.key
            .projects
            .as_ref()
            .is_none_or(|p| p.iter().any(|n| n == project))
    }
}
