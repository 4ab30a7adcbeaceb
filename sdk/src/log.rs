//! Structured logging into the gateway's log (the host's `log` import), tagged with the plugin's
//! name by the host. Natively (tests, examples) records go to stderr, which the test harness
//! captures.

/// Severity of a record.
#[derive(Debug, Clone, Copy)]
enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

/// Logs debugging detail with key/value `fields`.
pub fn debug(message: &str, fields: &[(&str, &str)]) {
    write(Level::Debug, message, fields);
}

/// Logs normal operation with key/value `fields`.
pub fn info(message: &str, fields: &[(&str, &str)]) {
    write(Level::Info, message, fields);
}

/// Logs something that looks wrong, with key/value `fields`.
pub fn warn(message: &str, fields: &[(&str, &str)]) {
    write(Level::Warn, message, fields);
}

/// Logs a failure with key/value `fields`.
pub fn error(message: &str, fields: &[(&str, &str)]) {
    write(Level::Error, message, fields);
}

#[cfg(target_arch = "wasm32")]
fn write(level: Level, message: &str, fields: &[(&str, &str)]) {
    use crate::bindings::log;
    let level = match level {
        Level::Debug => log::Level::Debug,
        Level::Info => log::Level::Info,
        Level::Warn => log::Level::Warn,
        Level::Error => log::Level::Error,
    };
    let fields: Vec<(String, String)> = fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    log::log(level, message, &fields);
}

#[cfg(not(target_arch = "wasm32"))]
fn write(level: Level, message: &str, fields: &[(&str, &str)]) {
    let fields: String = fields.iter().map(|(k, v)| format!(" {k}={v:?}")).collect();
    eprintln!("[{level:?}] {message}{fields}");
}
