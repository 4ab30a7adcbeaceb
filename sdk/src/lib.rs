//! The rdev plugin SDK: write a policy as a plain Rust type, test it natively against JSON fixtures,
//! and export it as a WebAssembly component (wasm32-wasip2) for one of the worlds in `wit/`.
//!
//! ```ignore
//! use rdev_plugin_sdk::{Command, CommandContext, Sanitizer, Verdict};
//!
//! struct DenyRm;
//!
//! impl Sanitizer for DenyRm {
//!     type Config = ();
//!     fn sanitize(_: &(), command: &Command, _: &CommandContext) -> Verdict {
//!         match command.script.as_deref() {
//!             Some(script) if script.contains("rm") => Verdict::deny("no rm"),
//!             _ => Verdict::Allow,
//!         }
//!     }
//! }
//!
//! rdev_plugin_sdk::export_sanitizer!(DenyRm);
//! ```
//!
//! - [`Sanitizer`], [`Validator`], [`Formatter`], [`Discovery`], [`ToolPolicy`]: one trait per world; the matching
//!   `export_*!` macro generates the component glue (`configure`, `self-test`, the entry point).
//! - [`shell`]: the host's shell parser (the same parser natively), [`log`]: the host's log.
//! - [`fixtures`]: the JSON test-case format; [`testing`]: the native harness that runs it.
//! - In wasm builds, the feature `arena` (on by default) makes a bump allocator the global
//!   allocator: an instance serves one call, so freeing memory is wasted work.
#![deny(missing_docs)]

// The generated glue and the export macros name this crate by its path, also from inside it.
extern crate self as rdev_plugin_sdk;

#[cfg(all(target_arch = "wasm32", feature = "arena"))]
mod arena;
#[doc(hidden)]
#[allow(unsafe_code, missing_docs, clippy::all)] // generated code
pub mod bindings;
mod config;
mod export;
pub mod fixtures;
pub mod log;
mod plugin;
pub mod shell;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
mod types;

pub use bindings::tools::{ToolCall, ToolCase, ToolContext, ToolVerdict};
pub use bindings::types::{
    Command, CommandContext, DiscoveryCase, EnvVar, ExpectedVerdict, FieldError, FormatterCase, InventoryItem, Project,
    Rendered, SanitizerCase, ValidatorCase, Verdict, WebhookTarget,
};
pub use config::parse_config;
pub use plugin::{Discovery, Formatter, Sanitizer, ToolPolicy, Validator};

/// Every instance serves one call and is thrown away: see [`arena`].
#[cfg(all(target_arch = "wasm32", feature = "arena"))]
#[global_allocator]
static ALLOCATOR: arena::Arena = arena::Arena::new();

/// Items the export macros expand to; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::export::{
        DiscoveryExport, FormatterExport, SanitizerExport, ToolPolicyExport, ValidatorExport, info_bytes,
    };
    pub use wit_bindgen;
}
