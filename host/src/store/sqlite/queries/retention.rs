//! Retention on SQLite: each batch is one short write through the writer's group commit. Output
//! lives in files (a command's file goes whole) and, from before files, in rows.

use async_trait::async_trait;
use sqlx::Row;

use super::SqliteStore;
use crate::store::{RetentionStore, StoreResult};

impl SqliteStore {
    /// Runs one deleting statement with its binds as a write; the rows it deleted.
    async fn delete_batch(&self, sql: &'static str, text: Option<String>, numbers: [i64; 2]) -> StoreResult<u64> {
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                let mut query = sqlx::query(sql);
                if let Some(text) = &text {
                    query = query.bind(text.as_str());
                }
                let done = query.bind(numbers[0]).bind(numbers[1]).execute(&mut *conn).await?;
                Ok(done.rows_affected())
            })
        }))
        .await
    }

    /// Deletes the output files of `ids` and records that they are gone; how many there were.
    async fn delete_files(&self, ids: Vec<String>) -> StoreResult<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        let listed = ids.clone();
        let removed = self
            .on_files(move |files| {
                let mut removed = 0;
                for id in &listed {
                    removed += u64::from(files.remove(id)?);
                }
                Ok(removed)
            })
            .await?;
        self.write(Box::new(move |conn| {
            Box::pin(async move {
                for id in &ids {
                    sqlx::query("UPDATE commands SET output_file_bytes = 0 WHERE id = $1")
                        .bind(id.as_str())
                        .execute(&mut *conn)
                        .await?;
                }
                Ok(())
            })
        }))
        .await?;
        Ok(removed)
    }
}

#[async_trait]
impl RetentionStore for SqliteStore {
    async fn prune_output_before(&self, project: &str, before: i64, limit: i64) -> StoreResult<u64> {
        let sql = "DELETE FROM command_output WHERE (command_id, seq) IN (SELECT o.command_id, o.seq \
                   FROM commands c JOIN command_output o ON o.command_id = c.id \
                   WHERE c.project = $1 AND c.finished_at < $2 LIMIT $3)";
        let rows = self.delete_batch(sql, Some(project.into()), [before, limit]).await?;
        let ids = sqlx::query_scalar(
            "SELECT id FROM commands WHERE project = $1 AND finished_at < $2 AND output_file_bytes > 0 LIMIT $3",
        )
        .bind(project)
        .bind(before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows + self.delete_files(ids).await?)
    }

    async fn stored_output(&self, project: &str) -> StoreResult<Vec<(String, i64)>> {
        let rows = sqlx::query(
            "SELECT id, bytes FROM (SELECT c.id, c.finished_at, COALESCE(c.output_file_bytes, 0) + \
             COALESCE((SELECT SUM(length(o.data)) FROM command_output o WHERE o.command_id = c.id), 0) AS bytes \
             FROM commands c WHERE c.project = $1 AND c.finished_at IS NOT NULL) \
             WHERE bytes > 0 ORDER BY finished_at DESC, id",
        )
        .bind(project)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("id")?, row.try_get("bytes")?)))
            .collect()
    }

    async fn delete_output(&self, command_id: &str, limit: i64) -> StoreResult<u64> {
        let sql = "DELETE FROM command_output WHERE (command_id, seq) IN \
                   (SELECT command_id, seq FROM command_output WHERE command_id = $1 AND seq > $2 LIMIT $3)";
        let rows = self.delete_batch(sql, Some(command_id.into()), [0, limit]).await?;
        Ok(rows + self.delete_files(vec![command_id.to_owned()]).await?)
    }

    async fn prune_audit_before(&self, before: i64, limit: i64) -> StoreResult<u64> {
        // Webhook events still to be sent refer to audit rows from the first of these on.
        let sql = "DELETE FROM audit_events WHERE id IN (SELECT id FROM audit_events WHERE at < $1 \
                   AND id < MIN(COALESCE((SELECT MIN(event_id) FROM webhook_events), 9223372036854775807), \
                   COALESCE((SELECT MIN(event_id) FROM webhook_deliveries WHERE finished_at IS NULL), 9223372036854775807)) \
                   ORDER BY id LIMIT $2)";
        self.delete_batch(sql, None, [before, limit]).await
    }

    async fn prune_deliveries_before(&self, before: i64, limit: i64) -> StoreResult<u64> {
        let sql = "DELETE FROM webhook_deliveries WHERE id IN (SELECT id FROM webhook_deliveries \
                   WHERE finished_at < $1 ORDER BY finished_at LIMIT $2)";
        self.delete_batch(sql, None, [before, limit]).await
    }
}
