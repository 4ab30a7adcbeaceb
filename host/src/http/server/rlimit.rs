//! The open-file limit: the soft limit is raised to the hard one at start, and the connection
//! cap is kept below it, so that a flood of sockets cannot take the descriptors the database,
//! plugin files and logs need.

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// The most descriptors asked for when the hard limit is unlimited (the kernel refuses more
/// than `fs.nr_open`, 1 Mi by default).
const UNLIMITED_TARGET: u64 = 1 << 20;

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns the limit now in effect.
pub(super) fn raise_nofile_limit() -> u64 {
    let (soft, hard) = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok(limits) => limits,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the open-file limit");
            return UNLIMITED_TARGET;
        }
    };
    let target = hard.min(UNLIMITED_TARGET).max(soft);
    if target == soft {
        return soft;
    }
    match setrlimit(Resource::RLIMIT_NOFILE, target, hard) {
        Ok(()) => target,
        Err(e) => {
            tracing::warn!(error = %e, soft, hard, "cannot raise the open-file limit");
            soft
        }
    }
}

/// Descriptors that connections may use: a quarter of the limit (at least 64, at most 1024) is
/// kept for everything else.
pub(super) fn connection_budget(nofile: u64) -> usize {
    let reserve = (nofile / 4).clamp(64, 1024);
    usize::try_from(nofile.saturating_sub(reserve)).unwrap_or(usize::MAX)
}
