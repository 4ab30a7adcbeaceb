//! Plugin files for tests: the default plugins and the hostile test plugins, both built by the
//! host's build script, and `[[plugins]]` entries naming them.

use std::path::{Path, PathBuf};

/// A hostile or helper test plugin from `tests/plugins/` (e.g. `endless_loop`).
pub fn test_plugin(name: &str) -> PathBuf {
    Path::new(env!("RDEV_TEST_PLUGINS_DIR")).join(format!("{name}.wasm"))
}

/// A default plugin from `plugins/` (e.g. `shell_sanitizer`).
pub fn default_plugin(name: &str) -> PathBuf {
    Path::new(env!("RDEV_DEFAULT_PLUGINS_DIR")).join(format!("{name}.wasm"))
}

/// A `[[plugins]]` entry; `extra` holds more `key = value` lines.
pub fn entry(name: &str, world: &str, file: &Path, extra: &str) -> String {
    format!(
        "\n[[plugins]]\nname = {name:?}\nworld = {world:?}\nfile = {:?}\n{extra}\n",
        file.display().to_string()
    )
}

/// A `command-sanitizer` entry.
pub fn sanitizer(name: &str, file: &Path, extra: &str) -> String {
    entry(name, "command-sanitizer", file, extra)
}
