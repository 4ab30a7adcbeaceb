//! `rdev login`: the gateway's URL and a token kept in a profile file
//! (`$XDG_CONFIG_HOME/rdev/profile.toml`, else `~/.config/rdev/profile.toml`, mode 0600) for the
//! client subcommands to fall back on when neither the flags nor `RDEV_URL`/`RDEV_TOKEN` give them.

use std::io::{IsTerminal, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use serde::{Deserialize, Serialize};

/// What a profile holds.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Profile {
    /// The gateway's URL.
    pub(super) url: Option<String>,
    /// An API key's token.
    pub(super) token: Option<String>,
}

#[derive(Debug, Args)]
pub(super) struct LoginArgs {
    /// The gateway's URL.
    #[arg(long, env = "RDEV_URL")]
    url: String,
}

/// The profile file's path.
fn path() -> Option<PathBuf> {
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))?;
    Some(config.join("rdev/profile.toml"))
}

/// The saved profile, if there is one.
pub(super) fn load() -> anyhow::Result<Profile> {
    let Some(path) = path() else {
        return Ok(Profile::default());
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text).with_context(|| format!("{} is not a valid profile", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Profile::default()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Asks for a token (not echoed on a terminal; read from stdin otherwise), checks it against
/// the gateway and saves the profile.
pub(super) fn login(args: LoginArgs) -> anyhow::Result<()> {
    let token = if std::io::stdin().is_terminal() {
        rpassword::prompt_password("API key token: ")?
    } else {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        text
    };
    let token = token.trim().to_owned();
    anyhow::ensure!(!token.is_empty(), "no token given");
    let url = args.url.trim_end_matches('/').to_owned();
    let check = super::client::Client::with(&url, &token);
    let projects = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(check.send(check.request(reqwest::Method::GET, "/v1/projects")))
        .context("the gateway refused the token")?;
    let path = path().context("no HOME or XDG_CONFIG_HOME to keep the profile in")?;
    std::fs::create_dir_all(path.parent().unwrap_or(&path))?;
    let text = toml::to_string(&Profile {
        url: Some(url.clone()),
        token: Some(token),
    })?;
    let temp = path.with_extension("toml.new");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temp)
        .with_context(|| format!("cannot write {}", temp.display()))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&temp, &path)?;
    let seen = projects["projects"].as_array().map_or(0, Vec::len);
    eprintln!(
        "logged in to {url} ({seen} projects visible); profile in {}",
        path.display()
    );
    Ok(())
}
