//! Helper sanitizer, version a of two (`probe-version-a`, `probe-version-b`): denies shell
//! scripts that contain the trigger word with the reason "<word> denied by version a", allows
//! everything else. The trigger word is `probe` unless the configuration is `{"word": "..."}`.
//! The gateway must show the new version's reason right after a hot swap (or a config change).

/// Which version this build is.
const VERSION: &str = "a";

include!("probe.rs");
