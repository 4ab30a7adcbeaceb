//! `rdev plugins keygen` and `rdev plugins sign`: the author's side of signed plugins (see
//! `plugins::trust`).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use crate::plugins::trust;

#[derive(Debug, Args)]
pub(super) struct KeygenArgs {
    /// Where to write the private key (created with mode 0600; an existing file is not
    /// overwritten).
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, Args)]
pub(super) struct SignArgs {
    /// The component (`.wasm`); the signature is written beside it as `<file>.sig`.
    file: PathBuf,
    /// The private key file made by `rdev plugins keygen`.
    #[arg(long, env = "RDEV_PLUGIN_KEY")]
    key: PathBuf,
}

/// Writes a new private key to `--out` and prints its public key (for `[plugin_trust] keys`).
pub(super) fn keygen(args: KeygenArgs) -> anyhow::Result<()> {
    let (secret, public) = trust::generate();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    writeln!(file, "{secret}").with_context(|| format!("cannot write {}", args.out.display()))?;
    file.sync_all()?;
    println!("{public}");
    Ok(())
}

/// Signs `file` with the key, writing `<file>.sig`, and prints the public key it verifies with.
pub(super) fn sign(args: SignArgs) -> anyhow::Result<()> {
    let secret = std::fs::read_to_string(&args.key).with_context(|| format!("cannot read {}", args.key.display()))?;
    let wasm = std::fs::read(&args.file).with_context(|| format!("cannot read {}", args.file.display()))?;
    let signature = trust::sign(&wasm, &secret).map_err(anyhow::Error::msg)?;
    let path = trust::signature_path(&args.file);
    std::fs::write(&path, signature).with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!("wrote {}", path.display());
    println!("{}", trust::public_of(&secret).map_err(anyhow::Error::msg)?);
    Ok(())
}
