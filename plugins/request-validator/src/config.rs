//! Size limits of the validator; every one has a default, so `{}` gives the built-in limits.

use serde::Deserialize;

/// The validator's configuration.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Longest key name, in characters.
    pub max_key_name_chars: usize,
    /// Largest `script` of a command, in bytes.
    pub max_script_bytes: usize,
    /// Largest `prompt` of a command, in bytes.
    pub max_prompt_bytes: usize,
    /// Most `args` of a command.
    pub max_args: usize,
    /// Largest single argument, in bytes.
    pub max_arg_bytes: usize,
    /// Most environment variables of a command.
    pub max_env: usize,
    /// Largest environment value, in bytes.
    pub max_env_value_bytes: usize,
    /// Largest Claude item `content`, in bytes.
    pub max_claude_content_bytes: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_key_name_chars: 64,
            max_script_bytes: 64 * 1024,
            max_prompt_bytes: 64 * 1024,
            max_args: 256,
            max_arg_bytes: 8 * 1024,
            max_env: 32,
            max_env_value_bytes: 8 * 1024,
            max_claude_content_bytes: 256 * 1024,
        }
    }
}

impl Config {
    /// Refuses limits of zero, which would refuse every request.
    pub fn check(&self) -> Result<(), String> {
        let limits = [
            ("max_key_name_chars", self.max_key_name_chars),
            ("max_script_bytes", self.max_script_bytes),
            ("max_prompt_bytes", self.max_prompt_bytes),
            ("max_args", self.max_args),
            ("max_arg_bytes", self.max_arg_bytes),
            ("max_env", self.max_env),
            ("max_env_value_bytes", self.max_env_value_bytes),
            ("max_claude_content_bytes", self.max_claude_content_bytes),
        ];
        match limits.iter().find(|(_, value)| *value == 0) {
            Some((name, _)) => Err(format!("`{name}` must be at least 1")),
            None => Ok(()),
        }
    }
}
