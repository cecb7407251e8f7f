//! What both backends share: reading a row into a domain type, error mapping,
//! clocks and URL redaction. Each backend only says how to read a column of its
//! own row type ([`Cols`]); the shape of every domain value is decided here once.

use crate::{LogChunk, Result, StoreError};
use chrono::{DateTime, SubsecRound, Utc};
use hanzo_core::{
    ApiToken, Application, AuditEntry, CronRun, Deployment, DeploymentEvent, DeploymentSource,
    Membership, Timestamp, User,
};
use uuid::Uuid;

/// Reads typed columns out of a backend's row.
pub(crate) trait Cols {
    fn text(&self, col: &str) -> Result<String>;
    fn opt_text(&self, col: &str) -> Result<Option<String>>;
    fn int(&self, col: &str) -> Result<i64>;
    fn opt_int(&self, col: &str) -> Result<Option<i64>>;
    fn boolean(&self, col: &str) -> Result<bool>;
    fn uuid(&self, col: &str) -> Result<Uuid>;
    fn opt_uuid(&self, col: &str) -> Result<Option<Uuid>>;
    fn ts(&self, col: &str) -> Result<Timestamp>;
    fn opt_ts(&self, col: &str) -> Result<Option<Timestamp>>;
    fn json(&self, col: &str) -> Result<serde_json::Value>;
    fn opt_json(&self, col: &str) -> Result<Option<serde_json::Value>>;
}

/// The current time at the precision both databases keep (microseconds), so a
/// value returned by a write equals the value read back later.
pub(crate) fn now() -> Timestamp {
    Utc::now().trunc_subsecs(6)
}

/// Truncates a caller's timestamp to the stored precision.
pub(crate) fn trunc(t: Timestamp) -> Timestamp {
    t.trunc_subsecs(6)
}

pub(crate) fn parse<T: std::str::FromStr>(col: &str, value: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    value
        .parse()
        .map_err(|e| StoreError::Corrupt(format!("column {col}: {e}")))
}

pub(crate) fn parse_ts(col: &str, value: &str) -> Result<Timestamp> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("column {col}: timestamp {value:?}: {e}")))
}

pub(crate) fn parse_json(col: &str, value: &str) -> Result<serde_json::Value> {
    serde_json::from_str(value).map_err(|e| StoreError::Corrupt(format!("column {col}: {e}")))
}

pub(crate) fn source_kind(source: &DeploymentSource) -> &'static str {
    match source {
        DeploymentSource::Git { .. } => "git",
        DeploymentSource::Image { .. } => "image",
        DeploymentSource::Rollback { .. } => "rollback",
    }
}

pub(crate) fn source_json(source: &DeploymentSource) -> serde_json::Value {
    // Serialising a plain enum of strings and UUIDs cannot fail.
    serde_json::to_value(source).unwrap_or(serde_json::Value::Null)
}

pub(crate) fn build_logs_path(id: Uuid) -> String {
    format!("/api/v1/deployments/{id}/logs")
}

/// Maps a unique violation to `Conflict { what }`, anything else to `Database`.
pub(crate) fn conflict(err: sqlx::Error, what: impl FnOnce() -> String) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict { what: what() }
        }
        _ => StoreError::Database(err),
    }
}

/// Maps a foreign-key violation to `NotFound { what }`, a unique violation to
/// `Conflict { what }`, anything else to `Database`.
pub(crate) fn missing_ref(err: sqlx::Error, what: impl FnOnce() -> String) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
            StoreError::NotFound { what: what() }
        }
        _ => StoreError::Database(err),
    }
}

pub(crate) fn not_found(what: impl Into<String>) -> StoreError {
    StoreError::NotFound { what: what.into() }
}

/// The URL with its password (userinfo or `password=` parameter) replaced by `***`.
pub(crate) fn redact_url(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(scheme_end) = out.find("://") {
        let rest_start = scheme_end + 3;
        let authority_end = out[rest_start..]
            .find(['/', '?', '#'])
            .map(|i| rest_start + i)
            .unwrap_or(out.len());
        if let Some(at) = out[rest_start..authority_end].rfind('@') {
            let userinfo = &out[rest_start..rest_start + at];
            if let Some(colon) = userinfo.find(':') {
                let start = rest_start + colon + 1;
                out.replace_range(start..rest_start + at, "***");
            }
        }
    }
    if let Some(q) = out.find('?') {
        let (base, query) = out.split_at(q + 1);
        let query = query
            .split('&')
            .map(|kv| {
                if kv.to_ascii_lowercase().starts_with("password=") {
                    "password=***".to_string()
                } else {
                    kv.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("&");
        out = format!("{base}{query}");
    }
    out
}

pub(crate) fn app_from<R: Cols>(r: &R, domains: Vec<String>) -> Result<Application> {
    let instances = r.int("instances")?;
    Ok(Application {
        id: r.uuid("id")?,
        name: r.text("name")?,
        org: r.text("org")?,
        repo: r.text("repo")?,
        branch: r.text("branch")?,
        runtime: r.text("runtime")?,
        status: parse("apps.status", &r.text("status")?)?,
        current_deployment_id: r.opt_uuid("current_deployment_id")?,
        desired_deployment_id: r.opt_uuid("desired_deployment_id")?,
        instances: u32::try_from(instances).map_err(|_| {
            StoreError::Corrupt(format!(
                "column apps.instances: {instances} is out of range"
            ))
        })?,
        domains,
        created_at: r.ts("created_at")?,
        updated_at: r.ts("updated_at")?,
    })
}

pub(crate) fn deployment_from<R: Cols>(r: &R) -> Result<Deployment> {
    let id = r.uuid("id")?;
    let source: DeploymentSource = serde_json::from_value(r.json("source")?)
        .map_err(|e| StoreError::Corrupt(format!("column deployments.source: {e}")))?;
    Ok(Deployment {
        id,
        app_id: r.uuid("app_id")?,
        number: r.int("number")?,
        source,
        image_tag: r.text("image_tag")?,
        image_digest: r.opt_text("image_digest")?,
        git_commit: r.text("git_commit")?,
        git_message: r.text("git_message")?,
        status: parse("deployments.status", &r.text("status")?)?,
        deployed_by: r.text("deployed_by")?,
        started_at: r.ts("started_at")?,
        completed_at: r.opt_ts("completed_at")?,
        build_logs: build_logs_path(id),
        url: r.text("url")?,
        error: r.opt_text("error")?,
        manifest: r.opt_json("manifest")?,
    })
}

pub(crate) fn event_from<R: Cols>(r: &R) -> Result<DeploymentEvent> {
    Ok(DeploymentEvent {
        id: r.uuid("id")?,
        deployment_id: r.uuid("deployment_id")?,
        kind: parse("deployment_events.kind", &r.text("kind")?)?,
        message: r.text("message")?,
        timestamp: r.ts("timestamp")?,
    })
}

pub(crate) fn cron_run_from<R: Cols>(r: &R) -> Result<CronRun> {
    Ok(CronRun {
        id: r.uuid("id")?,
        app_id: r.uuid("app_id")?,
        deployment_id: r.uuid("deployment_id")?,
        service: r.text("service")?,
        scheduled_at: r.ts("scheduled_at")?,
        started_at: r.ts("started_at")?,
        finished_at: r.opt_ts("finished_at")?,
        exit_code: r.opt_int("exit_code")?,
        status: r.text("status")?,
        log_tail: r.text("log_tail")?,
    })
}

pub(crate) fn log_from<R: Cols>(r: &R) -> Result<LogChunk> {
    Ok(LogChunk {
        seq: r.int("seq")?,
        at: r.ts("at")?,
        text: r.text("text")?,
    })
}

pub(crate) fn user_from<R: Cols>(r: &R) -> Result<User> {
    Ok(User {
        id: r.text("id")?,
        email: r.text("email")?,
        global_admin: r.boolean("global_admin")?,
        created_at: r.ts("created_at")?,
    })
}

/// A user read from columns prefixed `user_` (joined with a token).
pub(crate) fn prefixed_user_from<R: Cols>(r: &R) -> Result<User> {
    Ok(User {
        id: r.text("user_id")?,
        email: r.text("user_email")?,
        global_admin: r.boolean("user_global_admin")?,
        created_at: r.ts("user_created_at")?,
    })
}

pub(crate) fn membership_from<R: Cols>(r: &R) -> Result<Membership> {
    Ok(Membership {
        user_id: r.text("user_id")?,
        org: r.text("org")?,
        role: parse("memberships.role", &r.text("role")?)?,
    })
}

pub(crate) fn token_from<R: Cols>(r: &R) -> Result<ApiToken> {
    Ok(ApiToken {
        id: r.uuid("id")?,
        user_id: r.text("user_id")?,
        name: r.text("name")?,
        created_at: r.ts("created_at")?,
        expires_at: r.opt_ts("expires_at")?,
        revoked_at: r.opt_ts("revoked_at")?,
    })
}

pub(crate) fn audit_from<R: Cols>(r: &R) -> Result<AuditEntry> {
    Ok(AuditEntry {
        id: r.uuid("id")?,
        timestamp: r.ts("timestamp")?,
        user_id: r.text("user_id")?,
        user_email: r.text("user_email")?,
        org: r.text("org")?,
        app: r.opt_text("app")?,
        action: r.text("action")?,
        details: r.json("details")?,
        ip_address: r.opt_text("ip_address")?,
        user_agent: r.opt_text("user_agent")?,
    })
}

/// Domains are case-insensitive and may be written with a trailing dot.
pub(crate) fn normalize_domain(domain: &str) -> String {
    domain.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// The spellings of a repository URL that name the same repository: with and
/// without `.git` and a trailing slash.
pub(crate) fn repo_candidates(repo: &str) -> [String; 4] {
    let base = repo.trim_end_matches('/');
    let base = base.strip_suffix(".git").unwrap_or(base);
    [
        base.to_string(),
        format!("{base}.git"),
        format!("{base}/"),
        format!("{base}.git/"),
    ]
}

/// A token insert failed: its hash is taken, or its user does not exist.
pub(crate) fn token_insert_error(err: sqlx::Error, user_id: &str) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict {
            what: "a token with this secret".to_string(),
        },
        _ => missing_ref(err, || format!("user {user_id}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("postgres://hanzo:s3cret@127.0.0.1:5432/postgres"),
            "postgres://hanzo:***@127.0.0.1:5432/postgres"
        );
        assert_eq!(redact_url("postgres://hanzo@db/x"), "postgres://hanzo@db/x");
        assert_eq!(
            redact_url("postgres://db/x?user=a&password=b&sslmode=disable"),
            "postgres://db/x?user=a&password=***&sslmode=disable"
        );
        assert_eq!(
            redact_url("sqlite://data/hanzo.db"),
            "sqlite://data/hanzo.db"
        );
        assert_eq!(redact_url("postgres://u:p@ss@h/d"), "postgres://u:***@h/d");
    }

    #[test]
    fn sources_have_kinds() {
        assert_eq!(
            source_kind(&DeploymentSource::Git {
                branch: "main".into()
            }),
            "git"
        );
        assert_eq!(
            source_json(&DeploymentSource::Image {
                image: "nginx".into()
            }),
            serde_json::json!({"kind": "image", "image": "nginx"})
        );
    }

    #[test]
    fn repo_spellings() {
        assert_eq!(
            repo_candidates("https://git.example/a/b.git"),
            [
                "https://git.example/a/b".to_string(),
                "https://git.example/a/b.git".to_string(),
                "https://git.example/a/b/".to_string(),
                "https://git.example/a/b.git/".to_string()
            ]
        );
    }
}
