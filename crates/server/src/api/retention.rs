//! Retention of the audit log (spec: "Audit logs are retained for 1 year").
//! [`prune_expired`] is meant to be called periodically by the server, next to
//! the build-log pruning of `pipeline::prune_old_logs` (30 days).

use chrono::{Duration, Utc};
use hanzo_core::Timestamp;
use hanzo_store::{Store, StoreError};

/// How long audit rows are kept.
pub const AUDIT_RETENTION_DAYS: i64 = 365;

/// Deletes audit rows older than a year; returns how many.
pub async fn prune_expired(store: &dyn Store) -> Result<u64, StoreError> {
    prune_expired_at(store, Utc::now()).await
}

/// [`prune_expired`] as if the time were `now` (for tests and catch-up runs).
pub async fn prune_expired_at(store: &dyn Store, now: Timestamp) -> Result<u64, StoreError> {
    let removed = store
        .prune_audit(now - Duration::days(AUDIT_RETENTION_DAYS))
        .await?;
    if removed > 0 {
        tracing::info!(
            "retention: removed {removed} audit row(s) older than {AUDIT_RETENTION_DAYS} days"
        );
    }
    Ok(removed)
}
