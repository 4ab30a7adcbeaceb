//! What the retention policy asks of a store: deleting old output, audit rows and webhook
//! deliveries in small batches, so that no delete holds the database for long.

use async_trait::async_trait;

use super::StoreResult;

/// Deletes what the retention policy no longer keeps. Every call deletes at most `limit` rows and
/// says how many it deleted; the caller calls again until none is left.
#[async_trait]
pub trait RetentionStore: Send + Sync {
    /// Deletes the output (rows, or a command's output file whole) of the ended commands of
    /// `project` that finished before `before` (Unix milliseconds).
    async fn prune_output_before(&self, project: &str, before: i64, limit: i64) -> StoreResult<u64>;
    /// The ended commands of `project` that still have stored output, the latest to finish
    /// first, with the size of that output in bytes.
    async fn stored_output(&self, project: &str) -> StoreResult<Vec<(String, i64)>>;
    /// Deletes the output (rows, or its output file whole) of command `command_id`.
    async fn delete_output(&self, command_id: &str, limit: i64) -> StoreResult<u64>;
    /// Deletes audit rows older than `before` that no webhook event still waiting to be sent
    /// refers to.
    async fn prune_audit_before(&self, before: i64, limit: i64) -> StoreResult<u64>;
    /// Deletes finished webhook deliveries (with their attempts) that finished before `before`.
    async fn prune_deliveries_before(&self, before: i64, limit: i64) -> StoreResult<u64>;
}
