//! Claude configuration items of a workspace: `.claude/{commands,skills,agents}/<name>.md`.
//! Names and sizes are checked here, before any backend touches a file.

use std::time::SystemTime;

use serde::Serialize;

/// Largest item accepted, in bytes.
pub const MAX_ITEM_BYTES: usize = 256 * 1024;

/// The kinds of Claude configuration item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemKind {
    /// Slash commands.
    Commands,
    /// Skills.
    Skills,
    /// Sub-agents.
    Agents,
}

impl ItemKind {
    /// Parses the URL segment.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "commands" => Some(Self::Commands),
            "skills" => Some(Self::Skills),
            "agents" => Some(Self::Agents),
            _ => None,
        }
    }

    /// The directory (and URL) name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Commands => "commands",
            Self::Skills => "skills",
            Self::Agents => "agents",
        }
    }
}

/// Whether `name` can name an item: 1–64 of `[A-Za-z0-9._-]`, starting with a letter or digit,
/// so never hidden, never a path.
pub fn is_valid_item_name(name: &str) -> bool {
    crate::names::is_safe_name(name, 64) && !name.contains("..")
}

/// An item in a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ItemSummary {
    /// Name, without `.md`.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Last modification, RFC 3339.
    pub modified_at: Option<String>,
}

impl ItemSummary {
    /// A summary from file metadata.
    pub fn new(name: &str, size: u64, modified: Option<SystemTime>) -> Self {
        let modified_at = modified
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map(|d| crate::time::to_rfc3339(d.as_millis() as i64));
        Self {
            name: name.to_owned(),
            size,
            modified_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_names_cannot_escape_or_hide() {
        for ok in ["review", "fix-bug_2", "a.b"] {
            assert!(is_valid_item_name(ok), "{ok}");
        }
        for bad in ["", ".env", "../x", "a/b", "a..b", "x\0", &"n".repeat(65)] {
            assert!(!is_valid_item_name(bad), "{bad}");
        }
    }
}
