//! The glue between the plugin traits and the generated world bindings, and the `export_*!` macros
//! that put it into a plugin's component. Configuration is parsed and stored by `configure`; the
//! entry points run with the stored value (or the default when the host never configured).

use crate::bindings::{discovery, formatter, sanitizer, tool, validator};
use crate::config::{configure, with_config};
use crate::{
    Command, CommandContext, Discovery, DiscoveryCase, FieldError, Formatter, FormatterCase, InventoryItem, Project,
    Rendered, Sanitizer, SanitizerCase, ToolCall, ToolCase, ToolContext, ToolPolicy, ToolVerdict, Validator,
    ValidatorCase, Verdict, WebhookTarget,
};
use std::marker::PhantomData;

/// Writes the `rdev:plugin-info` custom section: the plugin crate's name and version, which the
/// gateway shows beside the component's digest in `GET /v1/plugins`.
#[doc(hidden)]
#[macro_export]
macro_rules! __plugin_info {
    () => {
        const RDEV_PLUGIN_INFO_JSON: &str = concat!(
            "{\"name\":\"",
            env!("CARGO_PKG_NAME"),
            "\",\"version\":\"",
            env!("CARGO_PKG_VERSION"),
            "\"}"
        );
        #[unsafe(link_section = "rdev:plugin-info")]
        #[used]
        static RDEV_PLUGIN_INFO: [u8; RDEV_PLUGIN_INFO_JSON.len()] =
            $crate::__private::info_bytes(RDEV_PLUGIN_INFO_JSON);
    };
}

/// `text` as an array of its bytes, for a custom section (`N` is its length).
pub const fn info_bytes<const N: usize>(text: &str) -> [u8; N] {
    let bytes = text.as_bytes();
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = bytes[i];
        i += 1;
    }
    out
}

/// Exports a [`Sanitizer`] as the component's `command-sanitizer` world.
#[macro_export]
macro_rules! export_sanitizer {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        #[allow(unsafe_code)]
        const _: () = {
            $crate::__plugin_info!();
            type RdevExport = $crate::__private::SanitizerExport<$plugin>;
            $crate::bindings::sanitizer::export_command_sanitizer!(RdevExport with_types_in $crate::bindings::sanitizer);
        };
    };
}

/// Exports a [`Validator`] as the component's `request-validator` world.
#[macro_export]
macro_rules! export_validator {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        #[allow(unsafe_code)]
        const _: () = {
            $crate::__plugin_info!();
            type RdevExport = $crate::__private::ValidatorExport<$plugin>;
            $crate::bindings::validator::export_request_validator!(RdevExport with_types_in $crate::bindings::validator);
        };
    };
}

/// Exports a [`Formatter`] as the component's `webhook-formatter` world.
#[macro_export]
macro_rules! export_formatter {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        #[allow(unsafe_code)]
        const _: () = {
            $crate::__plugin_info!();
            type RdevExport = $crate::__private::FormatterExport<$plugin>;
            $crate::bindings::formatter::export_webhook_formatter!(RdevExport with_types_in $crate::bindings::formatter);
        };
    };
}

/// Exports a [`Discovery`] as the component's `project-discovery` world.
#[macro_export]
macro_rules! export_discovery {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        #[allow(unsafe_code)]
        const _: () = {
            $crate::__plugin_info!();
            type RdevExport = $crate::__private::DiscoveryExport<$plugin>;
            $crate::bindings::discovery::export_project_discovery!(RdevExport with_types_in $crate::bindings::discovery);
        };
    };
}

/// Exports a [`ToolPolicy`] as the component's `tool-policy` world.
#[macro_export]
macro_rules! export_tool_policy {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        #[allow(unsafe_code)]
        const _: () = {
            $crate::__plugin_info!();
            type RdevExport = $crate::__private::ToolPolicyExport<$plugin>;
    $crate::bindings::tool::export_tool_policy!(RdevExport with_types_in $crate::bindings::tool);
        };
    };
}

/// Implements the `command-sanitizer` exports for `P`.
pub struct SanitizerExport<P>(PhantomData<P>);

impl<P: Sanitizer> sanitizer::Guest for SanitizerExport<P> {
    fn configure(config: String) -> Result<(), String> {
        configure(&config, P::check)
    }

    fn self_test() -> Vec<SanitizerCase> {
        P::self_test()
    }

    fn sanitize(command: Command, context: CommandContext) -> Verdict {
        with_config(|config| P::sanitize(config, &command, &context))
    }
}

/// Implements the `request-validator` exports for `P`.
pub struct ValidatorExport<P>(PhantomData<P>);

impl<P: Validator> validator::Guest for ValidatorExport<P> {
    fn configure(config: String) -> Result<(), String> {
        configure(&config, P::check)
    }

    fn self_test() -> Vec<ValidatorCase> {
        P::self_test()
    }

    fn validate(resource: String, request: String) -> Vec<FieldError> {
        with_config(|config| validate_json::<P>(config, &resource, &request))
    }
}

/// Implements the `webhook-formatter` exports for `P`.
pub struct FormatterExport<P>(PhantomData<P>);

impl<P: Formatter> formatter::Guest for FormatterExport<P> {
    fn configure(config: String) -> Result<(), String> {
        configure(&config, P::check)
    }

    fn self_test() -> Vec<FormatterCase> {
        P::self_test()
    }

    fn format(event_type: String, event: String, target: WebhookTarget) -> Result<Rendered, String> {
        with_config(|config| format_json::<P>(config, &event_type, &event, &target))
    }
}

/// Implements the `project-discovery` exports for `P`.
pub struct DiscoveryExport<P>(PhantomData<P>);

impl<P: Discovery> discovery::Guest for DiscoveryExport<P> {
    fn configure(config: String) -> Result<(), String> {
        configure(&config, P::check)
    }

    fn self_test() -> Vec<DiscoveryCase> {
        P::self_test()
    }

    fn discover(inventory: Vec<InventoryItem>) -> Result<Vec<Project>, String> {
        with_config(|config| P::discover(config, &inventory))
    }
}

/// Implements the `tool-policy` exports for `P`.
pub struct ToolPolicyExport<P>(PhantomData<P>);

impl<P: ToolPolicy> tool::Guest for ToolPolicyExport<P> {
    fn configure(config: String) -> Result<(), String> {
        configure(&config, P::check)
    }

    fn self_test() -> Vec<ToolCase> {
        P::self_test()
    }

    fn judge(call: ToolCall, context: ToolContext) -> ToolVerdict {
        with_config(|config| judge_json::<P>(config, &call, &context))
    }
}

/// Parses a tool call's input and judges it; an input that is not JSON is denied, not a trap.
pub(crate) fn judge_json<P: ToolPolicy>(config: &P::Config, call: &ToolCall, context: &ToolContext) -> ToolVerdict {
    match serde_json::from_str(&call.input) {
        Ok(input) => P::judge(config, &call.tool_name, &input, context),
        Err(e) => ToolVerdict::Deny(format!("the tool input is not valid JSON: {e}")),
    }
}

/// Parses the request and validates it; a request that is not JSON is one error on `$`.
pub(crate) fn validate_json<P: Validator>(config: &P::Config, resource: &str, request: &str) -> Vec<FieldError> {
    match serde_json::from_str(request) {
        Ok(request) => P::validate(config, resource, &request),
        Err(e) => vec![FieldError::new("$", format!("the request is not valid JSON: {e}"))],
    }
}

/// Parses the event and renders it; an event that is not JSON is an error, not a trap.
pub(crate) fn format_json<P: Formatter>(
    config: &P::Config,
    event_type: &str,
    event: &str,
    target: &WebhookTarget,
) -> Result<Rendered, String> {
    let event = serde_json::from_str(event).map_err(|e| format!("the event is not valid JSON: {e}"))?;
    P::format(config, event_type, &event, target)
}
