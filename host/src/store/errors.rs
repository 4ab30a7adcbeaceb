//! What a storage failure means for whoever asked: a fault of the database that a retry may get
//! past (disk full, I/O error, server down, pool exhausted), or a bug.

use sqlx::error::{DatabaseError, ErrorKind};

use super::StoreError;

/// The kind of a storage failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The database cannot serve now; the same request may succeed later (answered 503).
    Unavailable,
    /// A bug or corrupt data; retrying does not help (answered 500).
    Internal,
}

/// SQLite's primary result codes that mean the disk, the file or a lock is in the way.
const SQLITE_BUSY: i64 = 5;
const SQLITE_LOCKED: i64 = 6;
const SQLITE_IOERR: i64 = 10;
const SQLITE_FULL: i64 = 13;
const SQLITE_CANTOPEN: i64 = 14;

impl StoreError {
    /// Whether retrying later may succeed.
    pub fn fault(&self) -> Fault {
        match self {
            Self::Vanished(_) => Fault::Unavailable,
            // A file that does not hold what it should, or a failed sync, is not a passing fault.
            Self::OutputFile(e) if e.kind() == std::io::ErrorKind::InvalidData => Fault::Internal,
            Self::OutputFile(_) => Fault::Unavailable,
            Self::Database(e) => database_fault(e),
            Self::Migrate(_) | Self::Corrupt(_) => Fault::Internal,
        }
    }

    /// A short description fit for a client or a readiness report: no paths, no SQL, no data.
    pub fn summary(&self) -> &'static str {
        match self {
            Self::Vanished(_) => "the database file was removed or replaced",
            Self::OutputFile(e) => match e.kind() {
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => "the disk is full",
                std::io::ErrorKind::InvalidData => "stored output is damaged",
                _ => "the output files cannot be read or written",
            },
            Self::Database(e) => match &**e {
                sqlx::Error::PoolTimedOut => "timed out waiting for a database connection",
                sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolClosed => "the database cannot be reached",
                sqlx::Error::Database(e) => database_summary(&**e, self.fault()),
                _ if self.fault() == Fault::Unavailable => "the database is unavailable",
                _ => "database error",
            },
            _ if self.fault() == Fault::Unavailable => "the database is unavailable",
            _ => "database error",
        }
    }
}

/// What a database's own error says, in a few words.
fn database_summary(e: &dyn DatabaseError, fault: Fault) -> &'static str {
    let sqlstate = e
        .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
        .map(|pg| pg.code().to_owned());
    let sqlite = e
        .try_downcast_ref::<sqlx::sqlite::SqliteError>()
        .and_then(|lite| primary_code(lite.code().as_deref()));
    match (sqlite, sqlstate.as_deref()) {
        (Some(SQLITE_FULL), _) | (_, Some("53100")) => "the database disk is full",
        (Some(SQLITE_IOERR | SQLITE_CANTOPEN), _) => "the database file cannot be read or written",
        (Some(SQLITE_BUSY | SQLITE_LOCKED), _) | (_, Some("55P03")) => "the database is locked",
        (_, Some("57014")) => "a database statement timed out",
        _ if fault == Fault::Unavailable => "the database is unavailable",
        _ => "database error",
    }
}

fn database_fault(e: &sqlx::Error) -> Fault {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => Fault::Unavailable,
        sqlx::Error::Database(db) => match db.kind() {
            ErrorKind::UniqueViolation
            | ErrorKind::ForeignKeyViolation
            | ErrorKind::NotNullViolation
            | ErrorKind::CheckViolation => Fault::Internal,
            _ => Fault::Unavailable,
        },
        _ => Fault::Internal,
    }
}

/// The primary result code of a SQLite error (its code is the extended one, as a number).
fn primary_code(code: Option<&str>) -> Option<i64> {
    code?.parse::<i64>().ok().map(|c| c & 0xff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_and_network_failures_are_retryable() {
        for e in [
            sqlx::Error::PoolTimedOut,
            sqlx::Error::PoolClosed,
            sqlx::Error::Io(std::io::ErrorKind::ConnectionRefused.into()),
        ] {
            assert_eq!(StoreError::from(e).fault(), Fault::Unavailable);
        }
        assert_eq!(StoreError::Vanished("x".into()).fault(), Fault::Unavailable);
        assert_eq!(StoreError::Corrupt("x".into()).fault(), Fault::Internal);
        assert_eq!(StoreError::from(sqlx::Error::RowNotFound).fault(), Fault::Internal);
    }

    #[test]
    fn extended_sqlite_codes_map_to_their_primary_code() {
        assert_eq!(primary_code(Some("13")), Some(SQLITE_FULL));
        assert_eq!(primary_code(Some("778")), Some(SQLITE_IOERR)); // SQLITE_IOERR_WRITE
        assert_eq!(primary_code(None), None);
    }
}
