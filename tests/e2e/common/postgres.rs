//! Fresh PostgreSQL databases for tests, on the server named by `RDEV_TEST_DATABASE_URL`
//! (`scripts/test.sh` starts a throwaway cluster and sets it). Each call creates a new,
//! uniquely named database, so tests never touch data they did not create.

use sqlx::{Connection, Executor};

/// The admin URL of the test server. Fails loudly when it is missing: PostgreSQL tests never skip.
pub fn server_url() -> String {
    std::env::var("RDEV_TEST_DATABASE_URL").expect(
        "RDEV_TEST_DATABASE_URL is not set: run the suite with scripts/test.sh, which starts a throwaway PostgreSQL",
    )
}

/// Creates a new empty database and returns its URL.
pub async fn fresh_database() -> String {
    let server = server_url();
    let name = format!("rdev_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&server)
        .await
        .expect("connect to the test PostgreSQL");
    conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .unwrap();
    let (base, _) = server.rsplit_once('/').expect("URL with a database name");
    format!("{base}/{name}")
}
