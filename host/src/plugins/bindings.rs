//! Host-side bindings for the five plugin worlds, generated from `wit/` — the only place the host
//! reads the WIT package. The worlds share the `types`, `log` and `shell` interfaces, so the later
//! worlds reuse the first one's generated modules and every world speaks the same Rust types.

/// The `command-sanitizer` world; also the home of the shared interfaces.
pub mod sanitizer {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "command-sanitizer",
        exports: { default: async },
        additional_derives: [PartialEq],
    });
}

/// The `request-validator` world.
pub mod validator {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "request-validator",
        exports: { default: async },
        with: {
            "rdev:plugin/types": super::sanitizer::rdev::plugin::types,
            "rdev:plugin/log": super::sanitizer::rdev::plugin::log,
        },
    });
}

/// The `webhook-formatter` world.
pub mod formatter {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "webhook-formatter",
        exports: { default: async },
        with: {
            "rdev:plugin/types": super::sanitizer::rdev::plugin::types,
            "rdev:plugin/log": super::sanitizer::rdev::plugin::log,
        },
    });
}

/// The `project-discovery` world.
pub mod discovery {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "project-discovery",
        exports: { default: async },
        with: {
            "rdev:plugin/types": super::sanitizer::rdev::plugin::types,
            "rdev:plugin/log": super::sanitizer::rdev::plugin::log,
        },
    });
}

/// The `tool-policy` world; also the home of the `tools` interface.
pub mod tool {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "tool-policy",
        exports: { default: async },
        with: {
            "rdev:plugin/log": super::sanitizer::rdev::plugin::log,
            "rdev:plugin/shell": super::sanitizer::rdev::plugin::shell,
        },
    });
}

pub use sanitizer::rdev::plugin::{log, shell, types};
pub use tool::rdev::plugin::tools;
