//! The webhook outbox on SQLite: writes through the one writer (so a claim is atomic for the one
//! process a file serves), reads on the read-only pool.

use async_trait::async_trait;
use sqlx::sqlite::SqliteRow;
use sqlx::{Connection, Row, SqliteConnection};

use super::writes::insert_audit;
use super::{SqliteStore, audit_from_row, chunk_from_row, corrupt, from_json, to_json};
use crate::store::{
    AfterAttempt, AttemptRecord, AttemptResult, AuditEntry, AuditRecord, DeliveryClaim, DeliveryQuery, DeliveryRecord,
    EventTag, OutboxDepth, OutboxStore, OutputChunk, StoreResult, SubscriptionRecord,
};

/// Whether subscription `s` receives event `e` (`e.kind`, `e.family`, `e.project`,
/// `e.subscription_id`): the one a test event names, or any not disabled whose event and project
/// filters match.
macro_rules! subscription_matches {
    () => {
        "CASE WHEN e.subscription_id IS NOT NULL THEN s.id = e.subscription_id ELSE s.state <> 'disabled' \
         AND EXISTS (SELECT 1 FROM json_each(s.events) j WHERE j.value IN (e.kind, e.family, '*')) \
         AND (s.projects IS NULL OR EXISTS (SELECT 1 FROM json_each(s.projects) p WHERE p.value = e.project)) END"
    };
}

/// The outbox row of an event, written on the connection of the transaction that wrote its audit
/// row `event_id` — if any subscription matches it; the workers turn it into deliveries
/// ([`expand_events`]).
pub(super) async fn record_event(
    conn: &mut SqliteConnection,
    event_id: i64,
    at: i64,
    tag: &EventTag,
) -> StoreResult<()> {
    let [kind, family, _] = tag.patterns();
    sqlx::query(concat!(
        "INSERT INTO webhook_events (event_id, kind, family, project, subscription_id, at) \
         SELECT e.event_id, e.kind, e.family, e.project, e.subscription_id, e.at FROM (SELECT $1 AS event_id, \
         $2 AS kind, $3 AS family, $4 AS project, $5 AS subscription_id, $6 AS at) e \
         WHERE EXISTS (SELECT 1 FROM webhook_subscriptions s WHERE ",
        subscription_matches!(),
        ")"
    ))
    .bind(event_id)
    .bind(kind)
    .bind(family)
    .bind(tag.project.clone())
    .bind(tag.subscription.clone())
    .bind(at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Turns the oldest `limit` recorded events into their deliveries and deletes them, in one
/// transaction; the number of events done.
async fn expand_events(conn: &mut SqliteConnection, limit: i64) -> StoreResult<i64> {
    let mut tx = conn.begin().await?;
    sqlx::query(concat!(
        "INSERT INTO webhook_deliveries (id, subscription_id, event_id, event_type, project, state, attempts, \
         attempts_total, due_at, created_at) \
         SELECT 'msg_' || lower(hex(randomblob(12))), s.id, e.event_id, e.kind, e.project, 'pending', 0, 0, e.at, e.at \
         FROM (SELECT * FROM webhook_events ORDER BY event_id LIMIT $1) e \
         JOIN webhook_subscriptions s ON s.created_at <= e.at AND ",
        subscription_matches!(),
        " ORDER BY e.event_id"
    ))
    .bind(limit)
    .execute(&mut *tx)
    .await?;
    let done = sqlx::query(
        "DELETE FROM webhook_events WHERE event_id IN (SELECT event_id FROM webhook_events ORDER BY event_id LIMIT $1)",
    )
    .bind(limit)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(i64::try_from(done.rows_affected()).unwrap_or(i64::MAX))
}

fn subscription_from_row(row: &SqliteRow) -> StoreResult<SubscriptionRecord> {
    let state: String = row.try_get("state")?;
    let previous: Option<Vec<u8>> = row.try_get("previous_secret")?;
    let until: Option<i64> = row.try_get("previous_secret_until")?;
    Ok(SubscriptionRecord {
        id: row.try_get("id")?,
        url: row.try_get("url")?,
        events: from_json(Some(row.try_get("events")?))?.unwrap_or_default(),
        projects: from_json(row.try_get("projects")?)?,
        formatter: row.try_get("formatter")?,
        description: row.try_get("description")?,
        output_tail_bytes: row.try_get("output_tail_bytes")?,
        secret: row.try_get("secret")?,
        previous_secret: previous.zip(until),
        state: state.parse().map_err(corrupt)?,
        disabled_reason: row.try_get("disabled_reason")?,
        failing_since: row.try_get("failing_since")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn delivery_from_row(row: &SqliteRow) -> StoreResult<DeliveryRecord> {
    let state: String = row.try_get("state")?;
    Ok(DeliveryRecord {
        id: row.try_get("id")?,
        subscription_id: row.try_get("subscription_id")?,
        event_id: row.try_get("event_id")?,
        event_type: row.try_get("event_type")?,
        project: row.try_get("project")?,
        state: state.parse().map_err(corrupt)?,
        attempts: row.try_get("attempts")?,
        attempts_total: row.try_get("attempts_total")?,
        due_at: row.try_get("due_at")?,
        last_status: row.try_get("last_status")?,
        last_error: row.try_get("last_error")?,
        created_at: row.try_get("created_at")?,
        finished_at: row.try_get("finished_at")?,
    })
}

fn attempt_from_row(row: &SqliteRow) -> StoreResult<AttemptRecord> {
    Ok(AttemptRecord {
        delivery_id: row.try_get("delivery_id")?,
        attempt: row.try_get("attempt")?,
        at: row.try_get("at")?,
        status: row.try_get("status")?,
        latency_ms: row.try_get("latency_ms")?,
        error_class: row.try_get("error_class")?,
        error: row.try_get("error")?,
        response: row.try_get("response")?,
    })
}

/// Binds a subscription's columns as `$1`…`$15`, in the order of `subscription_columns!`.
fn bind_subscription<'q>(
    query: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>,
    sub: &'q SubscriptionRecord,
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments> {
    query
        .bind(sub.id.clone())
        .bind(sub.url.clone())
        .bind(to_json(&sub.events))
        .bind(sub.projects.as_ref().map(to_json))
        .bind(sub.formatter.clone())
        .bind(sub.description.clone())
        .bind(sub.output_tail_bytes)
        .bind(sub.secret.clone())
        .bind(sub.previous_secret.as_ref().map(|p| p.0.clone()))
        .bind(sub.previous_secret.as_ref().map(|p| p.1))
        .bind(sub.state.as_str())
        .bind(sub.disabled_reason.clone())
        .bind(sub.failing_since)
        .bind(sub.created_at)
        .bind(sub.updated_at)
}

async fn insert_subscription(
    conn: &mut SqliteConnection,
    sub: &SubscriptionRecord,
    audit: &AuditEntry,
) -> StoreResult<()> {
    let mut tx = conn.begin().await?;
    let insert = sqlx::query(concat!(
        "INSERT INTO webhook_subscriptions (",
        subscription_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
    ));
    bind_subscription(insert, sub).execute(&mut *tx).await?;
    insert_audit(&mut tx, audit).await?;
    tx.commit().await?;
    Ok(())
}

async fn update_subscription(
    conn: &mut SqliteConnection,
    sub: &SubscriptionRecord,
    audit: &AuditEntry,
) -> StoreResult<bool> {
    let mut tx = conn.begin().await?;
    let update = sqlx::query(
        "UPDATE webhook_subscriptions SET url = $2, events = $3, projects = $4, formatter = $5, description = $6, \
         output_tail_bytes = $7, secret = $8, previous_secret = $9, previous_secret_until = $10, state = $11, \
         disabled_reason = $12, failing_since = $13, created_at = $14, updated_at = $15 WHERE id = $1",
    );
    let done = bind_subscription(update, sub).execute(&mut *tx).await?;
    if done.rows_affected() == 0 {
        tx.rollback().await?;
        return Ok(false);
    }
    insert_audit(&mut tx, audit).await?;
    tx.commit().await?;
    Ok(true)
}

async fn delete_subscription(conn: &mut SqliteConnection, id: &str, audit: &AuditEntry) -> StoreResult<bool> {
    let mut tx = conn.begin().await?;
    let done = sqlx::query("DELETE FROM webhook_subscriptions WHERE id = $1")
        .bind(id.to_owned())
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() == 0 {
        tx.rollback().await?;
        return Ok(false);
    }
    insert_audit(&mut tx, audit).await?;
    tx.commit().await?;
    Ok(true)
}

/// Reads, per active subscription, only its first due deliveries (and the few held under a lease
/// that ran out), so a claim costs the same behind a backlog of any size. The plan is pinned
/// (`MATERIALIZED`, `CROSS JOIN`, `INDEXED BY`): left to itself, SQLite 3.51 scans every delivery
/// and runs the per-subscription subquery for each of them, seconds behind a backlog of 200,000.
async fn claim(conn: &mut SqliteConnection, claim: &DeliveryClaim) -> StoreResult<Vec<DeliveryRecord>> {
    let rows = sqlx::query(concat!(
        "WITH active AS MATERIALIZED (SELECT s.id, (SELECT COUNT(*) FROM webhook_deliveries x \
         WHERE x.subscription_id = s.id AND x.state = 'sending' AND x.lease_until >= $3) AS busy \
         FROM webhook_subscriptions s WHERE s.state = 'active'), \
         candidates AS (SELECT d.id, d.subscription_id, d.due_at FROM active a CROSS JOIN webhook_deliveries d \
         ON d.id IN (SELECT p.id FROM webhook_deliveries p INDEXED BY webhook_deliveries_due_by_subscription \
         WHERE p.subscription_id = a.id AND p.state = 'pending' AND p.due_at <= $3 ORDER BY p.due_at, p.id LIMIT $4) \
         UNION ALL SELECT d.id, d.subscription_id, d.due_at FROM webhook_deliveries d INDEXED BY webhook_deliveries_due \
         WHERE d.state = 'sending' AND d.subscription_id IN (SELECT id FROM active) AND (d.lease_until < $3 \
         OR NOT EXISTS (SELECT 1 FROM replicas r WHERE r.id = d.lease_owner))), \
         due AS (SELECT c.id, c.due_at, ROW_NUMBER() OVER (PARTITION BY c.subscription_id ORDER BY c.due_at, c.id) \
         + a.busy AS place FROM candidates c JOIN active a ON a.id = c.subscription_id) \
         UPDATE webhook_deliveries SET state = 'sending', lease_owner = $1, lease_until = $2 \
         WHERE id IN (SELECT id FROM due WHERE place <= $4 ORDER BY due_at LIMIT $5) RETURNING ",
        delivery_columns!()
    ))
    .bind(claim.owner.clone())
    .bind(claim.lease_until)
    .bind(claim.now)
    .bind(claim.per_subscription)
    .bind(claim.limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(delivery_from_row).collect()
}

async fn finish_attempt(conn: &mut SqliteConnection, result: &AttemptResult) -> StoreResult<bool> {
    let a = &result.attempt;
    let (state, due, finished) = match result.next {
        AfterAttempt::Succeeded => ("succeeded", None, Some(a.at + a.latency_ms)),
        AfterAttempt::RetryAt(at) => ("pending", Some(at), None),
        AfterAttempt::Failed => ("failed", None, Some(a.at + a.latency_ms)),
    };
    let mut tx = conn.begin().await?;
    let row = sqlx::query(
        "UPDATE webhook_deliveries SET state = $1, attempts = attempts + 1, attempts_total = attempts_total + 1, \
         due_at = COALESCE($2, due_at), lease_owner = NULL, lease_until = NULL, last_status = $3, last_error = $4, \
         finished_at = $5 WHERE id = $6 AND state = 'sending' AND lease_owner = $7 RETURNING subscription_id",
    )
    .bind(state)
    .bind(due)
    .bind(a.status)
    .bind(a.error_class.clone())
    .bind(finished)
    .bind(a.delivery_id.clone())
    .bind(result.owner.clone())
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        tx.rollback().await?;
        return Ok(false);
    };
    let subscription: String = row.try_get("subscription_id")?;
    sqlx::query(concat!(
        "INSERT INTO webhook_attempts (",
        attempt_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING"
    ))
    .bind(a.delivery_id.clone())
    .bind(a.attempt)
    .bind(a.at)
    .bind(a.status)
    .bind(a.latency_ms)
    .bind(a.error_class.clone())
    .bind(a.error.clone())
    .bind(a.response.clone())
    .execute(&mut *tx)
    .await?;
    let health = if result.healthy {
        "UPDATE webhook_subscriptions SET failing_since = NULL WHERE id = $1 AND failing_since IS NOT NULL"
    } else {
        "UPDATE webhook_subscriptions SET failing_since = COALESCE(failing_since, $2) WHERE id = $1"
    };
    sqlx::query(health)
        .bind(subscription.clone())
        .bind(a.at)
        .execute(&mut *tx)
        .await?;
    if let Some((reason, audit)) = &result.disable {
        let done = sqlx::query(
            "UPDATE webhook_subscriptions SET state = 'disabled', disabled_reason = $2, updated_at = $3 \
             WHERE id = $1 AND state = 'active'",
        )
        .bind(subscription)
        .bind(reason.clone())
        .bind(a.at)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 1 {
            insert_audit(&mut tx, audit).await?;
        }
    }
    tx.commit().await?;
    Ok(true)
}

async fn redeliver(
    conn: &mut SqliteConnection,
    (subscription, id): (&str, &str),
    now: i64,
    audit: &AuditEntry,
) -> StoreResult<bool> {
    let mut tx = conn.begin().await?;
    let done = sqlx::query(
        "UPDATE webhook_deliveries SET state = 'pending', attempts = 0, due_at = $3, finished_at = NULL \
         WHERE id = $1 AND subscription_id = $2 AND state <> 'sending'",
    )
    .bind(id.to_owned())
    .bind(subscription.to_owned())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        tx.rollback().await?;
        return Ok(false);
    }
    insert_audit(&mut tx, audit).await?;
    tx.commit().await?;
    Ok(true)
}

/// Runs a write of this module on the writer with owned copies of its arguments.
macro_rules! write_owned {
    ($store:expr, $f:ident, ($($arg:expr),*)) => {{
        $store.write(Box::new(move |conn| Box::pin(async move { $f(conn, $($arg),*).await }))).await
    }};
}

#[async_trait]
impl OutboxStore for SqliteStore {
    async fn insert_subscription(&self, sub: &SubscriptionRecord, audit: &AuditEntry) -> StoreResult<()> {
        let (sub, audit) = (sub.clone(), audit.clone());
        write_owned!(self, insert_subscription, (&sub, &audit))
    }

    async fn get_subscription(&self, id: &str) -> StoreResult<Option<SubscriptionRecord>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            subscription_columns!(),
            " FROM webhook_subscriptions WHERE id = $1"
        ))
        .bind(id.to_owned())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(subscription_from_row).transpose()
    }

    async fn list_subscriptions(&self) -> StoreResult<Vec<SubscriptionRecord>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            subscription_columns!(),
            " FROM webhook_subscriptions ORDER BY created_at DESC, id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(subscription_from_row).collect()
    }

    async fn update_subscription(&self, sub: &SubscriptionRecord, audit: &AuditEntry) -> StoreResult<bool> {
        let (sub, audit) = (sub.clone(), audit.clone());
        write_owned!(self, update_subscription, (&sub, &audit))
    }

    async fn delete_subscription(&self, id: &str, audit: &AuditEntry) -> StoreResult<bool> {
        let (id, audit) = (id.to_owned(), audit.clone());
        write_owned!(self, delete_subscription, (&id, &audit))
    }

    async fn expand_events(&self, limit: i64) -> StoreResult<i64> {
        // Idle rounds stay reads: every write waits in the one writer's queue, and a gateway
        // that keeps writing never counts as idle for the checkpoint that truncates the log.
        let waiting: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM webhook_events)")
            .fetch_one(&self.pool)
            .await?;
        if !waiting {
            return Ok(0);
        }
        write_owned!(self, expand_events, (limit))
    }

    async fn claim_deliveries(&self, c: &DeliveryClaim) -> StoreResult<Vec<DeliveryRecord>> {
        let due: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM webhook_subscriptions s CROSS JOIN webhook_deliveries p \
             INDEXED BY webhook_deliveries_due_by_subscription WHERE s.state = 'active' \
             AND p.subscription_id = s.id AND p.state = 'pending' AND p.due_at <= $1) \
             OR EXISTS (SELECT 1 FROM webhook_deliveries d INDEXED BY webhook_deliveries_due \
             WHERE d.state = 'sending' AND (d.lease_until < $1 \
             OR NOT EXISTS (SELECT 1 FROM replicas r WHERE r.id = d.lease_owner)))",
        )
        .bind(c.now)
        .fetch_one(&self.pool)
        .await?;
        if !due {
            return Ok(Vec::new());
        }
        let c = c.clone();
        write_owned!(self, claim, (&c))
    }

    async fn finish_attempt(&self, result: &AttemptResult) -> StoreResult<bool> {
        let result = result.clone();
        write_owned!(self, finish_attempt, (&result))
    }

    async fn list_deliveries(&self, q: &DeliveryQuery) -> StoreResult<Vec<DeliveryRecord>> {
        let (before_at, before_id) = q.before.clone().unzip();
        let rows = sqlx::query(concat!(
            "SELECT ",
            delivery_columns!(),
            " FROM webhook_deliveries WHERE subscription_id = $1 AND ($2 IS NULL OR state = $2) \
             AND ($3 IS NULL OR event_type = $3) \
             AND ($4 IS NULL OR created_at < $4 OR (created_at = $4 AND id < $5)) \
             ORDER BY created_at DESC, id DESC LIMIT $6"
        ))
        .bind(q.subscription_id.clone())
        .bind(q.state.map(|s| s.as_str()))
        .bind(q.event_type.clone())
        .bind(before_at)
        .bind(before_id)
        .bind(q.limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(delivery_from_row).collect()
    }

    async fn get_delivery(&self, subscription_id: &str, id: &str) -> StoreResult<Option<DeliveryRecord>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            delivery_columns!(),
            " FROM webhook_deliveries WHERE id = $1 AND subscription_id = $2"
        ))
        .bind(id.to_owned())
        .bind(subscription_id.to_owned())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(delivery_from_row).transpose()
    }

    async fn list_attempts(&self, delivery_id: &str) -> StoreResult<Vec<AttemptRecord>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            attempt_columns!(),
            " FROM webhook_attempts WHERE delivery_id = $1 ORDER BY attempt"
        ))
        .bind(delivery_id.to_owned())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(attempt_from_row).collect()
    }

    async fn redeliver(&self, subscription_id: &str, id: &str, now: i64, audit: &AuditEntry) -> StoreResult<bool> {
        let (sub, id, audit) = (subscription_id.to_owned(), id.to_owned(), audit.clone());
        write_owned!(self, redeliver, ((&sub, &id), now, &audit))
    }

    async fn get_audit(&self, id: i64) -> StoreResult<Option<AuditRecord>> {
        let row = sqlx::query(concat!("SELECT ", audit_columns!(), " FROM audit_events WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(audit_from_row).transpose()
    }

    async fn output_tail(&self, command_id: &str, limit: i64) -> StoreResult<Vec<OutputChunk>> {
        let id = command_id.to_owned();
        if let Some(chunks) = self.on_files(move |files| files.read_tail(&id, limit)).await? {
            return Ok(chunks);
        }
        let rows = sqlx::query(
            "SELECT seq, stream, data FROM (SELECT seq, stream, data FROM command_output WHERE command_id = $1 \
             ORDER BY seq DESC LIMIT $2) ORDER BY seq",
        )
        .bind(command_id.to_owned())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| chunk_from_row(command_id, r)).collect()
    }

    async fn outbox_depth(&self, now: i64) -> StoreResult<OutboxDepth> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, MIN(d.due_at) AS oldest, (SELECT MIN(at) FROM webhook_events) AS waiting \
             FROM webhook_deliveries d \
             JOIN webhook_subscriptions s ON s.id = d.subscription_id WHERE s.state = 'active' \
             AND ((d.state = 'pending' AND d.due_at <= $1) OR (d.state = 'sending' AND d.lease_until < $1))",
        )
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        let oldest: Option<i64> = row.try_get("oldest")?;
        let waiting: Option<i64> = row.try_get("waiting")?;
        Ok(OutboxDepth {
            due: row.try_get("n")?,
            oldest_due_at: oldest.into_iter().chain(waiting).min(),
        })
    }
}
