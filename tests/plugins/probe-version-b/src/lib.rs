//! Helper sanitizer, version b of two (`probe-version-a`, `probe-version-b`): denies shell
//! scripts that contain the trigger word with the reason "<word> denied by version b", allows
//! everything else. The trigger word is `probe` unless the configuration is `{"word": "..."}`.
//! The gateway must show the new version's reason right after a hot swap (or a config change).

/// Which version this build is.
const VERSION: &str = "b";

include!("../../probe-version-a/src/probe.rs");
