//! Reading a plugin's component file without trusting what sits at its path: only a regular
//! file, no larger than the configured cap, opened so that a FIFO or a device can neither block
//! nor flood the reader. A symbolic link is resolved and its target checked; it must stay inside
//! the directory that holds the configured path (a mounted ConfigMap is made of such links),
//! because a link out of it would make the gateway read — and report errors about — any file
//! it can open, on the say-so of whoever can write in the plugin directory.

use std::fs::{File, Metadata, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;

/// Writes `bytes` at `path` through a temporary file, synced and renamed over it: a reader sees
/// the old file or the new one, never a part.
pub fn replace(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut temp = path.as_os_str().to_owned();
    temp.push(".writing");
    let temp = PathBuf::from(temp);
    std::fs::write(&temp, bytes)?;
    File::open(&temp)?.sync_all()?;
    std::fs::rename(&temp, path)
}

/// Why a plugin file was not read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file (or its directory) could not be resolved, opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The configured path.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// Something other than a regular file is there.
    #[error("{path} is {kind}, not a regular file")]
    NotRegular {
        /// The configured path.
        path: String,
        /// What it is ("a FIFO", "a directory", …).
        kind: &'static str,
    },
    /// The file is larger than the cap.
    #[error("{path} is larger than plugin_runtime.max_file_bytes ({limit} bytes)")]
    TooLarge {
        /// The configured path.
        path: String,
        /// The cap.
        limit: u64,
    },
    /// A symbolic link leads out of the file's directory.
    #[error("{path} is a link to {target}, outside {dir}")]
    Outside {
        /// The configured path.
        path: String,
        /// Where it leads.
        target: String,
        /// The directory it must stay in.
        dir: String,
    },
}

/// Reads the plugin file at `path`, at most `limit` bytes. Blocking: call it off the runtime.
pub fn read(path: &Path, limit: u64) -> Result<Vec<u8>, FileError> {
    let shown = path.display().to_string();
    let io = |source| FileError::Io {
        path: shown.clone(),
        source,
    };
    let target = resolve(path)?;
    let mut file = open(&target).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(FileError::NotRegular {
            path: shown,
            kind: kind_of(&meta),
        });
    }
    let too_large = || FileError::TooLarge {
        path: shown.clone(),
        limit,
    };
    if meta.len() > limit {
        return Err(too_large());
    }
    let mut wasm = Vec::with_capacity(meta.len() as usize);
    // The file may grow after the check: read one byte past the cap to notice, never more.
    (&mut file).take(limit + 1).read_to_end(&mut wasm).map_err(io)?;
    if wasm.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(wasm)
}

/// The file `path` leads to, after checking that it stays inside `path`'s directory.
fn resolve(path: &Path) -> Result<PathBuf, FileError> {
    let io = |source| FileError::Io {
        path: path.display().to_string(),
        source,
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let dir = std::fs::canonicalize(dir).map_err(io)?;
    let target = std::fs::canonicalize(path).map_err(io)?;
    if target.starts_with(&dir) {
        return Ok(target);
    }
    Err(FileError::Outside {
        path: path.display().to_string(),
        target: target.display().to_string(),
        dir: dir.display().to_string(),
    })
}

/// Opens without blocking (a FIFO with no writer would block a plain open forever) and without
/// following a link swapped in since [`resolve`].
fn open(target: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags((OFlag::O_NONBLOCK | OFlag::O_NOFOLLOW | OFlag::O_NOCTTY).bits())
        .open(target)
}

fn kind_of(meta: &Metadata) -> &'static str {
    let kind = meta.file_type();
    if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(path: &Path, limit: u64) -> String {
        read(path, limit).unwrap_err().to_string()
    }

    #[test]
    fn reads_a_regular_file_and_a_link_inside_its_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("..data")).unwrap();
        std::fs::write(dir.path().join("..data/p.wasm"), b"wasm").unwrap();
        std::os::unix::fs::symlink("..data/p.wasm", dir.path().join("p.wasm")).unwrap();
        assert_eq!(read(&dir.path().join("p.wasm"), 1024).unwrap(), b"wasm");
    }

    #[test]
    fn refuses_what_is_not_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo.wasm");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert!(message(&fifo, 1024).contains("is a FIFO, not a regular file"));
        let sub = dir.path().join("dir.wasm");
        std::fs::create_dir(&sub).unwrap();
        assert!(message(&sub, 1024).contains("is a directory"));
    }

    #[test]
    fn refuses_a_link_out_of_its_directory() {
        let (inside, outside) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        std::fs::write(outside.path().join("p.wasm"), b"wasm").unwrap();
        let link = inside.path().join("p.wasm");
        std::os::unix::fs::symlink(outside.path().join("p.wasm"), &link).unwrap();
        assert!(message(&link, 1024).contains("outside"), "{}", message(&link, 1024));
        let zero = inside.path().join("zero.wasm");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        assert!(message(&zero, 1024).contains("is a link to /dev/zero"));
    }

    #[test]
    fn refuses_a_file_over_the_cap_without_reading_it() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.wasm");
        std::fs::write(&big, vec![0u8; 2048]).unwrap();
        assert!(message(&big, 1024).contains("larger than plugin_runtime.max_file_bytes (1024 bytes)"));
        assert_eq!(read(&big, 2048).unwrap().len(), 2048);
    }
}
