//! The webhook outbox on PostgreSQL: delivery workers of every replica take outbox rows and claim
//! due deliveries `FOR UPDATE SKIP LOCKED` (a row another worker is taking is skipped, one it took
//! is gone or no longer due), times are `TIMESTAMPTZ`, event filters `JSONB` arrays.

use async_trait::async_trait;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{Connection, PgConnection, Row};

use super::audit::insert_audit;
use super::rows::{self, at, corrupt, maybe_ms_of, ms_of};
use super::{PostgresStore, settle};
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
         AND s.events ?| ARRAY[e.kind, e.family, '*'] \
         AND (s.projects IS NULL OR COALESCE(s.projects ? e.project, false)) END"
    };
}

/// The outbox row of an event, written on the connection of the transaction that wrote its audit
/// row `event_id` — if any subscription matches it; the workers turn it into deliveries
/// ([`expand_events`]).
pub(super) async fn record_event(conn: &mut PgConnection, event_id: i64, when: i64, tag: &EventTag) -> StoreResult<()> {
    let [kind, family, _] = tag.patterns();
    sqlx::query(concat!(
        "INSERT INTO webhook_events (event_id, kind, family, project, subscription_id, at) \
         SELECT e.event_id, e.kind, e.family, e.project, e.subscription_id, e.at FROM (SELECT $1::bigint AS event_id, \
         $2::text AS kind, $3::text AS family, $4::text AS project, $5::text AS subscription_id, \
         $6::timestamptz AS at) e WHERE EXISTS (SELECT 1 FROM webhook_subscriptions s WHERE ",
        subscription_matches!(),
        ")"
    ))
    .bind(event_id)
    .bind(kind)
    .bind(family)
    .bind(&tag.project)
    .bind(&tag.subscription)
    .bind(at(when))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Turns the oldest `limit` recorded events that no other replica is turning into their
/// deliveries and deletes them, in one statement; the number of events done.
async fn expand_events(conn: &mut PgConnection, limit: i64) -> StoreResult<i64> {
    let row = sqlx::query(concat!(
        "WITH batch AS (DELETE FROM webhook_events WHERE event_id IN (SELECT event_id FROM webhook_events \
         ORDER BY event_id LIMIT $1 FOR UPDATE SKIP LOCKED) RETURNING *), \
         made AS (INSERT INTO webhook_deliveries (id, subscription_id, event_id, event_type, project, state, \
         attempts, attempts_total, due_at, created_at) \
         SELECT 'msg_' || replace(gen_random_uuid()::text, '-', ''), s.id, e.event_id, e.kind, e.project, \
         'pending', 0, 0, e.at, e.at FROM batch e JOIN webhook_subscriptions s ON s.created_at <= e.at AND ",
        subscription_matches!(),
        " RETURNING 1) SELECT (SELECT COUNT(*) FROM batch) AS events"
    ))
    .bind(limit)
    .fetch_one(&mut *conn)
    .await?;
    Ok(row.try_get("events")?)
}

fn subscription_from_row(row: &PgRow) -> StoreResult<SubscriptionRecord> {
    let state: String = row.try_get("state")?;
    let previous: Option<Vec<u8>> = row.try_get("previous_secret")?;
    let until = maybe_ms_of(row, "previous_secret_until")?;
    Ok(SubscriptionRecord {
        id: row.try_get("id")?,
        url: row.try_get("url")?,
        events: row.try_get::<Json<Vec<String>>, _>("events")?.0,
        projects: row.try_get::<Option<Json<Vec<String>>>, _>("projects")?.map(|j| j.0),
        formatter: row.try_get("formatter")?,
        description: row.try_get("description")?,
        output_tail_bytes: row.try_get("output_tail_bytes")?,
        secret: row.try_get("secret")?,
        previous_secret: previous.zip(until),
        state: state.parse().map_err(corrupt)?,
        disabled_reason: row.try_get("disabled_reason")?,
        failing_since: maybe_ms_of(row, "failing_since")?,
        created_at: ms_of(row, "created_at")?,
        updated_at: ms_of(row, "updated_at")?,
    })
}

fn delivery_from_row(row: &PgRow) -> StoreResult<DeliveryRecord> {
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
        due_at: ms_of(row, "due_at")?,
        last_status: row.try_get("last_status")?,
        last_error: row.try_get("last_error")?,
        created_at: ms_of(row, "created_at")?,
        finished_at: maybe_ms_of(row, "finished_at")?,
    })
}

fn attempt_from_row(row: &PgRow) -> StoreResult<AttemptRecord> {
    Ok(AttemptRecord {
        delivery_id: row.try_get("delivery_id")?,
        attempt: row.try_get("attempt")?,
        at: ms_of(row, "at")?,
        status: row.try_get("status")?,
        latency_ms: row.try_get("latency_ms")?,
        error_class: row.try_get("error_class")?,
        error: row.try_get("error")?,
        response: row.try_get("response")?,
    })
}

/// Binds a subscription's columns as `$1`…`$15`, in the order of `subscription_columns!`.
fn bind_subscription<'q>(
    query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    sub: &'q SubscriptionRecord,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    query
        .bind(&sub.id)
        .bind(&sub.url)
        .bind(Json(&sub.events))
        .bind(sub.projects.as_ref().map(Json))
        .bind(&sub.formatter)
        .bind(&sub.description)
        .bind(sub.output_tail_bytes)
        .bind(&sub.secret)
        .bind(sub.previous_secret.as_ref().map(|p| p.0.clone()))
        .bind(sub.previous_secret.as_ref().map(|p| at(p.1)))
        .bind(sub.state.as_str())
        .bind(&sub.disabled_reason)
        .bind(sub.failing_since.map(at))
        .bind(at(sub.created_at))
        .bind(at(sub.updated_at))
}

async fn insert_subscription(conn: &mut PgConnection, sub: &SubscriptionRecord, audit: &AuditEntry) -> StoreResult<()> {
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
    conn: &mut PgConnection,
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

async fn delete_subscription(conn: &mut PgConnection, id: &str, audit: &AuditEntry) -> StoreResult<bool> {
    let mut tx = conn.begin().await?;
    let done = sqlx::query("DELETE FROM webhook_subscriptions WHERE id = $1")
        .bind(id)
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

async fn claim(conn: &mut PgConnection, claim: &DeliveryClaim) -> StoreResult<Vec<DeliveryRecord>> {
    let rows = sqlx::query(concat!(
        "WITH active AS (SELECT s.id, (SELECT COUNT(*) FROM webhook_deliveries x \
         WHERE x.subscription_id = s.id AND x.state = 'sending' AND x.lease_until >= $3) AS busy \
         FROM webhook_subscriptions s WHERE s.state = 'active'), \
         candidates AS (SELECT p.id, p.subscription_id, p.due_at FROM active a CROSS JOIN LATERAL \
         (SELECT id, subscription_id, due_at FROM webhook_deliveries WHERE subscription_id = a.id \
         AND state = 'pending' AND due_at <= $3 ORDER BY due_at, id LIMIT $4) p \
         UNION ALL SELECT d.id, d.subscription_id, d.due_at FROM webhook_deliveries d \
         WHERE d.state = 'sending' AND d.subscription_id IN (SELECT id FROM active) AND (d.lease_until < $3 \
         OR NOT EXISTS (SELECT 1 FROM replicas r WHERE r.id = d.lease_owner))), \
         due AS (SELECT c.id, c.due_at, ROW_NUMBER() OVER (PARTITION BY c.subscription_id ORDER BY c.due_at, c.id) \
         + a.busy AS place FROM candidates c JOIN active a ON a.id = c.subscription_id), \
         picked AS (SELECT id FROM due WHERE place <= $4 ORDER BY due_at LIMIT $5), \
         locked AS (SELECT w.id AS locked_id FROM webhook_deliveries w WHERE w.id IN (SELECT id FROM picked) \
         AND ((w.state = 'pending' AND w.due_at <= $3) OR (w.state = 'sending' AND (w.lease_until < $3 \
         OR NOT EXISTS (SELECT 1 FROM replicas r WHERE r.id = w.lease_owner)))) \
         FOR UPDATE SKIP LOCKED) \
         UPDATE webhook_deliveries SET state = 'sending', lease_owner = $1, lease_until = $2 \
         FROM locked WHERE id = locked.locked_id RETURNING ",
        delivery_columns!()
    ))
    .bind(&claim.owner)
    .bind(at(claim.lease_until))
    .bind(at(claim.now))
    .bind(claim.per_subscription)
    .bind(claim.limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(delivery_from_row).collect()
}

async fn finish_attempt(conn: &mut PgConnection, result: &AttemptResult) -> StoreResult<bool> {
    let a = &result.attempt;
    let (state, due, finished) = match result.next {
        AfterAttempt::Succeeded => ("succeeded", None, Some(at(a.at + a.latency_ms))),
        AfterAttempt::RetryAt(due) => ("pending", Some(at(due)), None),
        AfterAttempt::Failed => ("failed", None, Some(at(a.at + a.latency_ms))),
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
    .bind(&a.error_class)
    .bind(finished)
    .bind(&a.delivery_id)
    .bind(&result.owner)
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
    .bind(&a.delivery_id)
    .bind(a.attempt)
    .bind(at(a.at))
    .bind(a.status)
    .bind(a.latency_ms)
    .bind(&a.error_class)
    .bind(&a.error)
    .bind(&a.response)
    .execute(&mut *tx)
    .await?;
    let health = if result.healthy {
        "UPDATE webhook_subscriptions SET failing_since = NULL WHERE id = $1 AND failing_since IS NOT NULL \
         AND $2::timestamptz IS NOT NULL"
    } else {
        "UPDATE webhook_subscriptions SET failing_since = COALESCE(failing_since, $2) WHERE id = $1"
    };
    sqlx::query(health)
        .bind(&subscription)
        .bind(at(a.at))
        .execute(&mut *tx)
        .await?;
    if let Some((reason, audit)) = &result.disable {
        let done = sqlx::query(
            "UPDATE webhook_subscriptions SET state = 'disabled', disabled_reason = $2, updated_at = $3 \
             WHERE id = $1 AND state = 'active'",
        )
        .bind(subscription)
        .bind(reason)
        .bind(at(a.at))
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
    conn: &mut PgConnection,
    (subscription, id): (&str, &str),
    now: i64,
    audit: &AuditEntry,
) -> StoreResult<bool> {
    let mut tx = conn.begin().await?;
    let done = sqlx::query(
        "UPDATE webhook_deliveries SET state = 'pending', attempts = 0, due_at = $3, finished_at = NULL \
         WHERE id = $1 AND subscription_id = $2 AND state <> 'sending'",
    )
    .bind(id)
    .bind(subscription)
    .bind(at(now))
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

#[async_trait]
impl OutboxStore for PostgresStore {
    async fn insert_subscription(&self, sub: &SubscriptionRecord, audit: &AuditEntry) -> StoreResult<()> {
        write_on!(self, |conn| insert_subscription(&mut conn, sub, audit))
    }

    async fn get_subscription(&self, id: &str) -> StoreResult<Option<SubscriptionRecord>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            subscription_columns!(),
            " FROM webhook_subscriptions WHERE id = $1"
        ))
        .bind(id)
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
        write_on!(self, |conn| update_subscription(&mut conn, sub, audit))
    }

    async fn delete_subscription(&self, id: &str, audit: &AuditEntry) -> StoreResult<bool> {
        write_on!(self, |conn| delete_subscription(&mut conn, id, audit))
    }

    async fn expand_events(&self, limit: i64) -> StoreResult<i64> {
        write_on!(self, |conn| expand_events(&mut conn, limit))
    }

    async fn claim_deliveries(&self, c: &DeliveryClaim) -> StoreResult<Vec<DeliveryRecord>> {
        write_on!(self, |conn| claim(&mut conn, c))
    }

    async fn finish_attempt(&self, result: &AttemptResult) -> StoreResult<bool> {
        write_on!(self, |conn| finish_attempt(&mut conn, result))
    }

    async fn list_deliveries(&self, q: &DeliveryQuery) -> StoreResult<Vec<DeliveryRecord>> {
        let (before_at, before_id) = q.before.clone().unzip();
        let rows = sqlx::query(concat!(
            "SELECT ",
            delivery_columns!(),
            " FROM webhook_deliveries WHERE subscription_id = $1 AND ($2::text IS NULL OR state = $2) \
             AND ($3::text IS NULL OR event_type = $3) \
             AND ($4::timestamptz IS NULL OR created_at < $4 OR (created_at = $4 AND id < $5)) \
             ORDER BY created_at DESC, id DESC LIMIT $6"
        ))
        .bind(&q.subscription_id)
        .bind(q.state.map(|s| s.as_str()))
        .bind(&q.event_type)
        .bind(before_at.map(at))
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
        .bind(id)
        .bind(subscription_id)
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
        .bind(delivery_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(attempt_from_row).collect()
    }

    async fn redeliver(&self, subscription_id: &str, id: &str, now: i64, audit: &AuditEntry) -> StoreResult<bool> {
        write_on!(self, |conn| redeliver(&mut conn, (subscription_id, id), now, audit))
    }

    async fn get_audit(&self, id: i64) -> StoreResult<Option<AuditRecord>> {
        let row = sqlx::query(concat!("SELECT ", audit_columns!(), " FROM audit_events WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(rows::audit).transpose()
    }

    async fn output_tail(&self, command_id: &str, limit: i64) -> StoreResult<Vec<OutputChunk>> {
        let rows = sqlx::query(
            "SELECT seq, stream, data FROM (SELECT seq, stream, data FROM command_output WHERE command_id = $1 \
             ORDER BY seq DESC LIMIT $2) tail ORDER BY seq",
        )
        .bind(command_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| rows::output_chunk(command_id, r)).collect()
    }

    async fn outbox_depth(&self, now: i64) -> StoreResult<OutboxDepth> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, MIN(d.due_at) AS oldest, (SELECT MIN(at) FROM webhook_events) AS waiting \
             FROM webhook_deliveries d \
             JOIN webhook_subscriptions s ON s.id = d.subscription_id WHERE s.state = 'active' \
             AND ((d.state = 'pending' AND d.due_at <= $1) OR (d.state = 'sending' AND d.lease_until < $1))",
        )
        .bind(at(now))
        .fetch_one(&self.pool)
        .await?;
        let oldest = maybe_ms_of(&row, "oldest")?;
        let waiting = maybe_ms_of(&row, "waiting")?;
        Ok(OutboxDepth {
            due: row.try_get("n")?,
            oldest_due_at: oldest.into_iter().chain(waiting).min(),
        })
    }
}
