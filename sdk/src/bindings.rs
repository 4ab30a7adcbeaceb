//! Bindings generated from `wit/`, one module per world. The `types`, `log` and `shell` interfaces
//! are generated once (with the command-sanitizer world) and shared by the other worlds through
//! `with:`, so a `Command` or `FieldError` is the same Rust type whichever world uses it.

/// The command-sanitizer world; also the home of the shared interfaces.
pub mod sanitizer {
    wit_bindgen::generate!({
        path: "../wit",
        world: "command-sanitizer",
        generate_unused_types: true,
        additional_derives: [PartialEq, Eq],
        export_macro_name: "export_command_sanitizer",
        pub_export_macro: true,
        default_bindings_module: "::rdev_plugin_sdk::__private::bindings::sanitizer",
        runtime_path: "::rdev_plugin_sdk::__private::wit_bindgen::rt",
    });
}

/// The request-validator world.
pub mod validator {
    wit_bindgen::generate!({
        path: "../wit",
        world: "request-validator",
        with: {
            "rdev:plugin/types@0.1.0": crate::bindings::sanitizer::rdev::plugin::types,
            "rdev:plugin/log@0.1.0": crate::bindings::sanitizer::rdev::plugin::log,
        },
        export_macro_name: "export_request_validator",
        pub_export_macro: true,
        default_bindings_module: "::rdev_plugin_sdk::__private::bindings::validator",
        runtime_path: "::rdev_plugin_sdk::__private::wit_bindgen::rt",
    });
}

/// The webhook-formatter world.
pub mod formatter {
    wit_bindgen::generate!({
        path: "../wit",
        world: "webhook-formatter",
        with: {
            "rdev:plugin/types@0.1.0": crate::bindings::sanitizer::rdev::plugin::types,
            "rdev:plugin/log@0.1.0": crate::bindings::sanitizer::rdev::plugin::log,
        },
        export_macro_name: "export_webhook_formatter",
        pub_export_macro: true,
        default_bindings_module: "::rdev_plugin_sdk::__private::bindings::formatter",
        runtime_path: "::rdev_plugin_sdk::__private::wit_bindgen::rt",
    });
}

/// The project-discovery world.
pub mod discovery {
    wit_bindgen::generate!({
        path: "../wit",
        world: "project-discovery",
        with: {
            "rdev:plugin/types@0.1.0": crate::bindings::sanitizer::rdev::plugin::types,
            "rdev:plugin/log@0.1.0": crate::bindings::sanitizer::rdev::plugin::log,
        },
        export_macro_name: "export_project_discovery",
        pub_export_macro: true,
        default_bindings_module: "::rdev_plugin_sdk::__private::bindings::discovery",
        runtime_path: "::rdev_plugin_sdk::__private::wit_bindgen::rt",
    });
}

/// The tool-policy world; also the home of the `tools` interface.
pub mod tool {
    wit_bindgen::generate!({
        path: "../wit",
        world: "tool-policy",
        with: {
            "rdev:plugin/log@0.1.0": crate::bindings::sanitizer::rdev::plugin::log,
            "rdev:plugin/shell@0.1.0": crate::bindings::sanitizer::rdev::plugin::shell,
        },
        additional_derives: [PartialEq, Eq],
        export_macro_name: "export_tool_policy",
        pub_export_macro: true,
        default_bindings_module: "::rdev_plugin_sdk::__private::bindings::tool",
        runtime_path: "::rdev_plugin_sdk::__private::wit_bindgen::rt",
    });
}

pub use sanitizer::rdev::plugin::{log, shell, types};
pub use tool::rdev::plugin::tools;
