//! What the gateway adds to a `claude` run: a `PreToolUse` hook that puts every tool call
//! before the project's rules and the plugin chain ([`hooks`], [`tools`], [`paths`]), and the
//! typed events and summary read from its `stream-json` output ([`stream_json`]).

pub(crate) mod hooks;
mod paths;
pub(crate) mod stream_json;
pub mod tools;

pub use stream_json::RunSummary;
pub use tools::{ToolCall, ToolVerdict};
