//! Retention on PostgreSQL: each batch is one short statement.

use async_trait::async_trait;
use sqlx::Row;

use super::PostgresStore;
use super::rows::at;
use crate::store::{RetentionStore, StoreResult};

#[async_trait]
impl RetentionStore for PostgresStore {
    async fn prune_output_before(&self, project: &str, before: i64, limit: i64) -> StoreResult<u64> {
        let done = sqlx::query(
            "DELETE FROM command_output WHERE (command_id, seq) IN (SELECT o.command_id, o.seq \
             FROM commands c JOIN command_output o ON o.command_id = c.id \
             WHERE c.project = $1 AND c.finished_at < $2 LIMIT $3)",
        )
        .bind(project)
        .bind(at(before))
        .bind(limit)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    async fn stored_output(&self, project: &str) -> StoreResult<Vec<(String, i64)>> {
        let rows = sqlx::query(
            "SELECT c.id, SUM(octet_length(o.data))::BIGINT AS bytes FROM commands c \
             JOIN command_output o ON o.command_id = c.id \
             WHERE c.project = $1 AND c.finished_at IS NOT NULL GROUP BY c.id ORDER BY MAX(c.finished_at) DESC, c.id",
        )
        .bind(project)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("id")?, row.try_get("bytes")?)))
            .collect()
    }

    async fn delete_output(&self, command_id: &str, limit: i64) -> StoreResult<u64> {
        let done = sqlx::query(
            "DELETE FROM command_output WHERE (command_id, seq) IN \
             (SELECT command_id, seq FROM command_output WHERE command_id = $1 LIMIT $2)",
        )
        .bind(command_id)
        .bind(limit)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    async fn prune_audit_before(&self, before: i64, limit: i64) -> StoreResult<u64> {
        let done = sqlx::query(
            "DELETE FROM audit_events WHERE id IN (SELECT id FROM audit_events WHERE at < $1 \
             AND id < LEAST(COALESCE((SELECT MIN(event_id) FROM webhook_events), 9223372036854775807), \
             COALESCE((SELECT MIN(event_id) FROM webhook_deliveries WHERE finished_at IS NULL), 9223372036854775807)) \
             ORDER BY id LIMIT $2)",
        )
        .bind(at(before))
        .bind(limit)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    async fn prune_deliveries_before(&self, before: i64, limit: i64) -> StoreResult<u64> {
        let done = sqlx::query(
            "DELETE FROM webhook_deliveries WHERE id IN (SELECT id FROM webhook_deliveries \
             WHERE finished_at < $1 ORDER BY finished_at LIMIT $2)",
        )
        .bind(at(before))
        .bind(limit)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}
