//! SQLite store: the embedded default.
//!
//! One file in WAL mode with a busy timeout and foreign keys on. Every
//! read-then-write runs in a `BEGIN IMMEDIATE` transaction, which takes SQLite's
//! single write lock up front: two writers never interleave, so per-app
//! deployment numbers and build claims are atomic without retries.
//! UUIDs are hyphenated TEXT, timestamps fixed-width ISO-8601 TEXT (they sort as
//! text), JSON is TEXT.

use crate::common::{self, Cols, conflict, missing_ref, normalize_domain, not_found};
use crate::{
    AppPatch, AuditQuery, DeploymentPatch, LogChunk, NewApp, NewDeployment, Result, Store,
    StoreError,
};
use async_trait::async_trait;
use hanzo_core::{
    ApiToken, Application, AuditEntry, CronRun, Deployment, DeploymentEvent, DeploymentStatus,
    EnvVar, EventType, Membership, NewAudit, Role, Timestamp, User,
};
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use std::path::{Path, PathBuf};
use std::time::Duration;
use uuid::Uuid;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// How long a statement waits for another connection's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The SQLite implementation of [`Store`].
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
}

/// Where a SQLite URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Location {
    Memory,
    File(PathBuf),
}

fn location(url: &str) -> Location {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let rest = rest.split('?').next().unwrap_or(rest);
    if rest.is_empty() || rest == ":memory:" {
        Location::Memory
    } else {
        Location::File(PathBuf::from(rest))
    }
}

fn ts(t: Timestamp) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

fn opt_ts(t: Option<Timestamp>) -> Option<String> {
    t.map(ts)
}

fn id(u: Uuid) -> String {
    u.hyphenated().to_string()
}

fn json_text(v: &serde_json::Value) -> String {
    v.to_string()
}

impl Cols for SqliteRow {
    fn text(&self, col: &str) -> Result<String> {
        Ok(self.try_get(col)?)
    }
    fn opt_text(&self, col: &str) -> Result<Option<String>> {
        Ok(self.try_get(col)?)
    }
    fn opt_int(&self, col: &str) -> Result<Option<i64>> {
        Ok(self.try_get(col)?)
    }
    fn int(&self, col: &str) -> Result<i64> {
        Ok(self.try_get(col)?)
    }
    fn boolean(&self, col: &str) -> Result<bool> {
        Ok(self.try_get(col)?)
    }
    fn uuid(&self, col: &str) -> Result<Uuid> {
        common::parse(col, &self.try_get::<String, _>(col)?)
    }
    fn opt_uuid(&self, col: &str) -> Result<Option<Uuid>> {
        self.try_get::<Option<String>, _>(col)?
            .map(|s| common::parse(col, &s))
            .transpose()
    }
    fn ts(&self, col: &str) -> Result<Timestamp> {
        common::parse_ts(col, &self.try_get::<String, _>(col)?)
    }
    fn opt_ts(&self, col: &str) -> Result<Option<Timestamp>> {
        self.try_get::<Option<String>, _>(col)?
            .map(|s| common::parse_ts(col, &s))
            .transpose()
    }
    fn json(&self, col: &str) -> Result<serde_json::Value> {
        common::parse_json(col, &self.try_get::<String, _>(col)?)
    }
    fn opt_json(&self, col: &str) -> Result<Option<serde_json::Value>> {
        self.try_get::<Option<String>, _>(col)?
            .map(|s| common::parse_json(col, &s))
            .transpose()
    }
}

impl SqliteStore {
    /// Opens (creating if missing, with its parent directory) the database at
    /// `sqlite://PATH`, a bare `PATH`, or an in-memory one for `sqlite::memory:`.
    /// Does not migrate; call [`Store::migrate`] (or use [`crate::connect`]).
    pub async fn connect(url: &str) -> Result<Self> {
        let connect_err = |source: sqlx::Error| StoreError::Connect {
            url: common::redact_url(url),
            source,
        };
        let loc = location(url);
        let base = SqliteConnectOptions::new()
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = match &loc {
            Location::Memory => {
                // Every connection to ":memory:" is its own database: keep exactly one, forever.
                SqlitePoolOptions::new()
                    .max_connections(1)
                    .min_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None)
                    .connect_with(base.in_memory(true))
                    .await
                    .map_err(connect_err)?
            }
            Location::File(path) => {
                create_parent(path).map_err(|e| connect_err(sqlx::Error::Io(e)))?;
                let opts = base
                    .filename(path)
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal);
                SqlitePoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(BUSY_TIMEOUT)
                    .connect_with(opts)
                    .await
                    .map_err(connect_err)?
            }
        };
        Ok(SqliteStore { pool })
    }

    /// The underlying pool (for tests and diagnostics).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Closes every connection; later calls fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn write_tx(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }
}

fn create_parent(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => std::fs::create_dir_all(parent),
        _ => Ok(()),
    }
}

// ---- helpers running inside a connection or transaction -----------------

async fn ensure_org_in(conn: &mut SqliteConnection, name: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO orgs (id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
    )
    .bind(id(Uuid::now_v7()))
    .bind(name)
    .bind(ts(common::now()))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn insert_audit(conn: &mut SqliteConnection, a: &NewAudit) -> Result<AuditEntry> {
    let row = sqlx::query(
        "INSERT INTO audit_log (id, timestamp, user_id, user_email, org, app, action, details, ip_address, user_agent)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING *",
    )
    .bind(id(Uuid::now_v7()))
    .bind(ts(common::now()))
    .bind(&a.user_id)
    .bind(&a.user_email)
    .bind(&a.org)
    .bind(&a.app)
    .bind(&a.action)
    .bind(json_text(&a.details))
    .bind(&a.ip_address)
    .bind(&a.user_agent)
    .fetch_one(&mut *conn)
    .await?;
    common::audit_from(&row)
}

async fn maybe_audit(conn: &mut SqliteConnection, a: Option<&NewAudit>) -> Result<()> {
    if let Some(a) = a {
        insert_audit(conn, a).await?;
    }
    Ok(())
}

async fn domains_of(conn: &mut SqliteConnection, app_id: Uuid) -> Result<Vec<String>> {
    let rows = sqlx::query("SELECT domain FROM domains WHERE app_id = $1 ORDER BY domain")
        .bind(id(app_id))
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(|r| r.text("domain")).collect()
}

async fn app_from_row(conn: &mut SqliteConnection, row: &SqliteRow) -> Result<Application> {
    let app_id = row.uuid("id")?;
    let domains = domains_of(conn, app_id).await?;
    common::app_from(row, domains)
}

async fn apps_from_rows(
    conn: &mut SqliteConnection,
    rows: Vec<SqliteRow>,
) -> Result<Vec<Application>> {
    let mut apps = Vec::with_capacity(rows.len());
    for row in &rows {
        apps.push(app_from_row(conn, row).await?);
    }
    Ok(apps)
}

/// `application ORG/NAME` for the app, or NotFound.
async fn app_label(conn: &mut SqliteConnection, app_id: Uuid) -> Result<String> {
    let row = sqlx::query("SELECT org, name FROM apps WHERE id = $1")
        .bind(id(app_id))
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| not_found(format!("application {app_id}")))?;
    Ok(format!(
        "application {}/{}",
        row.text("org")?,
        row.text("name")?
    ))
}

async fn deployment_in(conn: &mut SqliteConnection, dep_id: Uuid) -> Result<Deployment> {
    let row = sqlx::query("SELECT * FROM deployments WHERE id = $1")
        .bind(id(dep_id))
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| not_found(format!("deployment {dep_id}")))?;
    common::deployment_from(&row)
}

fn deployments_from(rows: &[SqliteRow]) -> Result<Vec<Deployment>> {
    rows.iter().map(common::deployment_from).collect()
}

const UPDATE_DEPLOYMENT: &str = "UPDATE deployments SET
    status = COALESCE($2, status),
    image_tag = COALESCE($3, image_tag),
    image_digest = COALESCE($4, image_digest),
    git_commit = COALESCE($5, git_commit),
    git_message = COALESCE($6, git_message),
    url = COALESCE($7, url),
    error = COALESCE($8, error),
    manifest = COALESCE($9, manifest),
    completed_at = COALESCE($10, completed_at)
  WHERE id = $1 AND ($11 IS NULL OR status = $11)
  RETURNING *";

fn orgs_json(orgs: Option<&[String]>) -> Option<String> {
    orgs.map(|o| serde_json::Value::from(o.to_vec()).to_string())
}

#[async_trait]
impl Store for SqliteStore {
    async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    async fn ensure_org(&self, name: &str) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        ensure_org_in(&mut conn, name).await
    }

    async fn list_orgs(&self) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT name FROM orgs ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| r.text("name")).collect()
    }

    async fn create_app(&self, app: NewApp, audit: Option<&NewAudit>) -> Result<Application> {
        let mut tx = self.write_tx().await?;
        ensure_org_in(&mut tx, &app.org).await?;
        let now = ts(common::now());
        let row = sqlx::query(
            "INSERT INTO apps (id, org, name, repo, branch, runtime, status, current_deployment_id,
                               desired_deployment_id, instances, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, NULL, 1, $8, $8) RETURNING *",
        )
        .bind(id(Uuid::now_v7()))
        .bind(&app.org)
        .bind(&app.name)
        .bind(&app.repo)
        .bind(&app.branch)
        .bind(&app.runtime)
        .bind(hanzo_core::AppStatus::Stopped.as_str())
        .bind(&now)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| conflict(e, || format!("application {}/{}", app.org, app.name)))?;
        let created = common::app_from(&row, Vec::new())?;
        maybe_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(created)
    }

    async fn get_app(&self, org: &str, name: &str) -> Result<Application> {
        let mut conn = self.pool.acquire().await?;
        let row = sqlx::query("SELECT * FROM apps WHERE org = $1 AND name = $2")
            .bind(org)
            .bind(name)
            .fetch_optional(&mut *conn)
            .await?
            .ok_or_else(|| not_found(format!("application {org}/{name}")))?;
        app_from_row(&mut conn, &row).await
    }

    async fn get_app_by_id(&self, app_id: Uuid) -> Result<Application> {
        let mut conn = self.pool.acquire().await?;
        let row = sqlx::query("SELECT * FROM apps WHERE id = $1")
            .bind(id(app_id))
            .fetch_optional(&mut *conn)
            .await?
            .ok_or_else(|| not_found(format!("application {app_id}")))?;
        app_from_row(&mut conn, &row).await
    }

    async fn list_apps(&self, orgs: Option<&[String]>) -> Result<Vec<Application>> {
        let mut conn = self.pool.acquire().await?;
        let rows = sqlx::query(
            "SELECT * FROM apps WHERE ($1 IS NULL OR org IN (SELECT value FROM json_each($1)))
             ORDER BY org, name",
        )
        .bind(orgs_json(orgs))
        .fetch_all(&mut *conn)
        .await?;
        apps_from_rows(&mut conn, rows).await
    }

    async fn update_app(
        &self,
        app_id: Uuid,
        patch: AppPatch,
        audit: Option<&NewAudit>,
    ) -> Result<Application> {
        let mut tx = self.write_tx().await?;
        let row = sqlx::query(
            "UPDATE apps SET
                status = COALESCE($2, status),
                current_deployment_id = CASE WHEN $3 THEN $4 ELSE current_deployment_id END,
                desired_deployment_id = CASE WHEN $5 THEN $6 ELSE desired_deployment_id END,
                instances = COALESCE($7, instances),
                branch = COALESCE($8, branch),
                repo = COALESCE($9, repo),
                updated_at = $10
             WHERE id = $1 RETURNING *",
        )
        .bind(id(app_id))
        .bind(patch.status.map(|s| s.as_str()))
        .bind(patch.current_deployment_id.is_some())
        .bind(patch.current_deployment_id.flatten().map(id))
        .bind(patch.desired_deployment_id.is_some())
        .bind(patch.desired_deployment_id.flatten().map(id))
        .bind(patch.instances.map(i64::from))
        .bind(&patch.branch)
        .bind(&patch.repo)
        .bind(ts(common::now()))
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| missing_ref(e, || "the deployment named in the update".to_string()))?
        .ok_or_else(|| not_found(format!("application {app_id}")))?;
        let app = app_from_row(&mut tx, &row).await?;
        maybe_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(app)
    }

    async fn delete_app(&self, app_id: Uuid, audit: Option<&NewAudit>) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query("DELETE FROM apps WHERE id = $1")
            .bind(id(app_id))
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(not_found(format!("application {app_id}")));
        }
        maybe_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn find_apps_by_repo(&self, repo: &str) -> Result<Vec<Application>> {
        let mut conn = self.pool.acquire().await?;
        let [a, b, c, d] = common::repo_candidates(repo);
        let rows =
            sqlx::query("SELECT * FROM apps WHERE repo IN ($1, $2, $3, $4) ORDER BY org, name")
                .bind(a)
                .bind(b)
                .bind(c)
                .bind(d)
                .fetch_all(&mut *conn)
                .await?;
        apps_from_rows(&mut conn, rows).await
    }

    async fn add_domain(&self, app_id: Uuid, domain: &str, audit: Option<&NewAudit>) -> Result<()> {
        let domain = normalize_domain(domain);
        let mut tx = self.write_tx().await?;
        app_label(&mut tx, app_id).await?;
        let holder = sqlx::query("SELECT a.org, a.name FROM domains d JOIN apps a ON a.id = d.app_id WHERE d.domain = $1")
            .bind(&domain)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(h) = holder {
            return Err(StoreError::Conflict {
                what: format!(
                    "domain {domain} (routed to application {}/{})",
                    h.text("org")?,
                    h.text("name")?
                ),
            });
        }
        sqlx::query("INSERT INTO domains (domain, app_id) VALUES ($1, $2)")
            .bind(&domain)
            .bind(id(app_id))
            .execute(&mut *tx)
            .await
            .map_err(|e| conflict(e, || format!("domain {domain}")))?;
        maybe_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn remove_domain(
        &self,
        app_id: Uuid,
        domain: &str,
        audit: Option<&NewAudit>,
    ) -> Result<()> {
        let domain = normalize_domain(domain);
        let mut tx = self.write_tx().await?;
        let label = app_label(&mut tx, app_id).await?;
        let done = sqlx::query("DELETE FROM domains WHERE app_id = $1 AND domain = $2")
            .bind(id(app_id))
            .bind(&domain)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(not_found(format!("domain {domain} of {label}")));
        }
        maybe_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn set_env(&self, app_id: Uuid, var: &EnvVar, audit: Option<&NewAudit>) -> Result<()> {
        let mut tx = self.write_tx().await?;
        app_label(&mut tx, app_id).await?;
        sqlx::query(
            "INSERT INTO env_vars (app_id, name, value) VALUES ($1, $2, $3)
             ON CONFLICT (app_id, name) DO UPDATE SET value = excluded.value",
        )
        .bind(id(app_id))
        .bind(&var.name)
        .bind(&var.value)
        .execute(&mut *tx)
        .await?;
        maybe_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn delete_env(&self, app_id: Uuid, name: &str, audit: Option<&NewAudit>) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let label = app_label(&mut tx, app_id).await?;
        let done = sqlx::query("DELETE FROM env_vars WHERE app_id = $1 AND name = $2")
            .bind(id(app_id))
            .bind(name)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(not_found(format!("environment variable {name} of {label}")));
        }
        maybe_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_env(&self, app_id: Uuid) -> Result<Vec<EnvVar>> {
        let mut conn = self.pool.acquire().await?;
        app_label(&mut conn, app_id).await?;
        let rows = sqlx::query("SELECT name, value FROM env_vars WHERE app_id = $1 ORDER BY name")
            .bind(id(app_id))
            .fetch_all(&mut *conn)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(EnvVar {
                    name: r.text("name")?,
                    value: r.text("value")?,
                })
            })
            .collect()
    }

    async fn create_deployment(
        &self,
        new: NewDeployment,
        audit: Option<&NewAudit>,
    ) -> Result<Deployment> {
        let mut tx = self.write_tx().await?;
        app_label(&mut tx, new.app_id).await?;
        let number: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(number), 0) + 1 FROM deployments WHERE app_id = $1",
        )
        .bind(id(new.app_id))
        .fetch_one(&mut *tx)
        .await?;
        let dep_id = Uuid::now_v7();
        let row = sqlx::query(
            "INSERT INTO deployments (id, app_id, number, source, source_kind, image_tag, image_digest,
                                      git_commit, git_message, status, deployed_by, started_at,
                                      completed_at, url, error, manifest)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, NULL, $13, NULL, NULL)
             RETURNING *",
        )
        .bind(id(dep_id))
        .bind(id(new.app_id))
        .bind(number)
        .bind(json_text(&common::source_json(&new.source)))
        .bind(common::source_kind(&new.source))
        .bind(&new.image_tag)
        .bind(&new.image_digest)
        .bind(&new.git_commit)
        .bind(&new.git_message)
        .bind(DeploymentStatus::Queued.as_str())
        .bind(&new.deployed_by)
        .bind(ts(common::now()))
        .bind(&new.url)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| conflict(e, || format!("deployment #{number} of application {}", new.app_id)))?;
        let dep = common::deployment_from(&row)?;
        maybe_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(dep)
    }

    async fn get_deployment(&self, dep_id: Uuid) -> Result<Deployment> {
        let mut conn = self.pool.acquire().await?;
        deployment_in(&mut conn, dep_id).await
    }

    async fn list_deployments(&self, app_id: Uuid, limit: u32) -> Result<Vec<Deployment>> {
        let rows = sqlx::query(
            "SELECT * FROM deployments WHERE app_id = $1 ORDER BY number DESC LIMIT $2",
        )
        .bind(id(app_id))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        deployments_from(&rows)
    }

    async fn deployments_in(&self, statuses: &[DeploymentStatus]) -> Result<Vec<Deployment>> {
        let names: Vec<&str> = statuses.iter().map(|s| s.as_str()).collect();
        let rows = sqlx::query(
            "SELECT * FROM deployments WHERE status IN (SELECT value FROM json_each($1))
             ORDER BY started_at, number, id",
        )
        .bind(serde_json::Value::from(names).to_string())
        .fetch_all(&self.pool)
        .await?;
        deployments_from(&rows)
    }

    async fn update_deployment(&self, dep_id: Uuid, patch: DeploymentPatch) -> Result<Deployment> {
        let row = bind_patch(sqlx::query(UPDATE_DEPLOYMENT), dep_id, &patch, None)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| not_found(format!("deployment {dep_id}")))?;
        common::deployment_from(&row)
    }

    async fn transition_deployment(
        &self,
        dep_id: Uuid,
        from: DeploymentStatus,
        patch: DeploymentPatch,
    ) -> Result<Deployment> {
        let mut tx = self.write_tx().await?;
        let row = bind_patch(sqlx::query(UPDATE_DEPLOYMENT), dep_id, &patch, Some(from))
            .fetch_optional(&mut *tx)
            .await?;
        match row {
            Some(row) => {
                let dep = common::deployment_from(&row)?;
                tx.commit().await?;
                Ok(dep)
            }
            None => {
                let actual = deployment_in(&mut tx, dep_id).await?;
                Err(StoreError::StaleStatus {
                    expected: from.as_str().to_string(),
                    actual: actual.status.as_str().to_string(),
                })
            }
        }
    }

    async fn claim_next_build(&self) -> Result<Option<Deployment>> {
        let mut tx = self.write_tx().await?;
        let next: Option<String> = sqlx::query_scalar(
            "SELECT d.id FROM deployments d
             WHERE d.status = 'queued' AND d.source_kind = 'git'
               AND NOT EXISTS (SELECT 1 FROM deployments b
                               WHERE b.app_id = d.app_id AND b.status IN ('building', 'pushing'))
             ORDER BY d.started_at, d.number
             LIMIT 1",
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(next) = next else {
            return Ok(None);
        };
        let row = sqlx::query("UPDATE deployments SET status = 'building' WHERE id = $1 AND status = 'queued' RETURNING *")
            .bind(&next)
            .fetch_one(&mut *tx)
            .await?;
        let dep = common::deployment_from(&row)?;
        tx.commit().await?;
        Ok(Some(dep))
    }

    async fn prune_deployments(&self, app_id: Uuid, keep: u32) -> Result<Vec<Deployment>> {
        let mut tx = self.write_tx().await?;
        app_label(&mut tx, app_id).await?;
        let rows = sqlx::query(
            "DELETE FROM deployments
             WHERE app_id = $1
               AND id NOT IN (SELECT id FROM deployments WHERE app_id = $1 ORDER BY number DESC LIMIT $2)
               AND id NOT IN (SELECT current_deployment_id FROM apps WHERE id = $1 AND current_deployment_id IS NOT NULL)
               AND id NOT IN (SELECT desired_deployment_id FROM apps WHERE id = $1 AND desired_deployment_id IS NOT NULL)
               AND status NOT IN ('building', 'pushing', 'deploying')
             RETURNING *",
        )
        .bind(id(app_id))
        .bind(i64::from(keep))
        .fetch_all(&mut *tx)
        .await?;
        let mut deleted = deployments_from(&rows)?;
        deleted.sort_by_key(|d| std::cmp::Reverse(d.number));
        tx.commit().await?;
        Ok(deleted)
    }

    async fn add_event(
        &self,
        deployment_id: Uuid,
        kind: EventType,
        message: &str,
    ) -> Result<DeploymentEvent> {
        let row = sqlx::query(
            "INSERT INTO deployment_events (id, deployment_id, kind, message, timestamp)
             VALUES ($1, $2, $3, $4, $5) RETURNING *",
        )
        .bind(id(Uuid::now_v7()))
        .bind(id(deployment_id))
        .bind(kind.as_str())
        .bind(message)
        .bind(ts(common::now()))
        .fetch_one(&self.pool)
        .await
        .map_err(|e| missing_ref(e, || format!("deployment {deployment_id}")))?;
        common::event_from(&row)
    }

    async fn list_events(&self, deployment_id: Uuid) -> Result<Vec<DeploymentEvent>> {
        let rows =
            sqlx::query("SELECT * FROM deployment_events WHERE deployment_id = $1 ORDER BY seq")
                .bind(id(deployment_id))
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(common::event_from).collect()
    }

    async fn append_log(&self, deployment_id: Uuid, text: &str) -> Result<LogChunk> {
        // One statement: SQLite runs it under the write lock, so seq is race-free.
        let row = sqlx::query(
            "INSERT INTO build_logs (deployment_id, seq, at, text)
             SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3 FROM build_logs WHERE deployment_id = $1
             RETURNING seq, at, text",
        )
        .bind(id(deployment_id))
        .bind(ts(common::now()))
        .bind(text)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| missing_ref(e, || format!("deployment {deployment_id}")))?;
        common::log_from(&row)
    }

    async fn read_log(&self, deployment_id: Uuid, after: i64) -> Result<Vec<LogChunk>> {
        let rows = sqlx::query("SELECT seq, at, text FROM build_logs WHERE deployment_id = $1 AND seq > $2 ORDER BY seq")
            .bind(id(deployment_id))
            .bind(after)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(common::log_from).collect()
    }

    async fn prune_logs(&self, older_than: Timestamp) -> Result<u64> {
        let done = sqlx::query("DELETE FROM build_logs WHERE at < $1")
            .bind(ts(common::trunc(older_than)))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn upsert_user(&self, user_id: &str, email: &str, global_admin: bool) -> Result<User> {
        let row = sqlx::query(
            "INSERT INTO users (id, email, global_admin, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (id) DO UPDATE SET email = excluded.email, global_admin = excluded.global_admin
             RETURNING *",
        )
        .bind(user_id)
        .bind(email)
        .bind(global_admin)
        .bind(ts(common::now()))
        .fetch_one(&self.pool)
        .await?;
        common::user_from(&row)
    }

    async fn get_user(&self, user_id: &str) -> Result<User> {
        let row = sqlx::query("SELECT * FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| not_found(format!("user {user_id}")))?;
        common::user_from(&row)
    }

    async fn set_membership(&self, user_id: &str, org: &str, role: Role) -> Result<()> {
        let mut tx = self.write_tx().await?;
        ensure_org_in(&mut tx, org).await?;
        sqlx::query(
            "INSERT INTO memberships (user_id, org, role) VALUES ($1, $2, $3)
             ON CONFLICT (user_id, org) DO UPDATE SET role = excluded.role",
        )
        .bind(user_id)
        .bind(org)
        .bind(role.as_str())
        .execute(&mut *tx)
        .await
        .map_err(|e| missing_ref(e, || format!("user {user_id}")))?;
        tx.commit().await?;
        Ok(())
    }

    async fn remove_membership(&self, user_id: &str, org: &str) -> Result<()> {
        let done = sqlx::query("DELETE FROM memberships WHERE user_id = $1 AND org = $2")
            .bind(user_id)
            .bind(org)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(not_found(format!(
                "membership of user {user_id} in organisation {org}"
            )));
        }
        Ok(())
    }

    async fn memberships(&self, user_id: &str) -> Result<Vec<Membership>> {
        let rows = sqlx::query("SELECT * FROM memberships WHERE user_id = $1 ORDER BY org")
            .bind(user_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(common::membership_from).collect()
    }

    async fn org_members(&self, org: &str) -> Result<Vec<Membership>> {
        let rows = sqlx::query("SELECT * FROM memberships WHERE org = $1 ORDER BY user_id")
            .bind(org)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(common::membership_from).collect()
    }

    async fn create_token(
        &self,
        user_id: &str,
        name: &str,
        secret_sha256: &str,
        expires_at: Option<Timestamp>,
    ) -> Result<ApiToken> {
        let row = sqlx::query(
            "INSERT INTO api_tokens (id, user_id, name, secret_sha256, created_at, expires_at, revoked_at)
             VALUES ($1, $2, $3, $4, $5, $6, NULL) RETURNING *",
        )
        .bind(id(Uuid::now_v7()))
        .bind(user_id)
        .bind(name)
        .bind(secret_sha256)
        .bind(ts(common::now()))
        .bind(opt_ts(expires_at.map(common::trunc)))
        .fetch_one(&self.pool)
        .await
        .map_err(|e| common::token_insert_error(e, user_id))?;
        common::token_from(&row)
    }

    async fn find_token(
        &self,
        secret_sha256: &str,
        now: Timestamp,
    ) -> Result<Option<(ApiToken, User)>> {
        let row = sqlx::query(
            "SELECT t.*, u.email AS user_email, u.global_admin AS user_global_admin, u.created_at AS user_created_at
             FROM api_tokens t JOIN users u ON u.id = t.user_id
             WHERE t.secret_sha256 = $1 AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > $2)",
        )
        .bind(secret_sha256)
        .bind(ts(common::trunc(now)))
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok((common::token_from(&r)?, common::prefixed_user_from(&r)?)))
            .transpose()
    }

    async fn list_tokens(&self, user_id: &str) -> Result<Vec<ApiToken>> {
        let rows =
            sqlx::query("SELECT * FROM api_tokens WHERE user_id = $1 ORDER BY created_at, id")
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(common::token_from).collect()
    }

    async fn revoke_token(&self, user_id: &str, token_id: Uuid) -> Result<()> {
        let done = sqlx::query(
            "UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $3) WHERE id = $1 AND user_id = $2",
        )
        .bind(id(token_id))
        .bind(user_id)
        .bind(ts(common::now()))
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(not_found(format!("token {token_id} of user {user_id}")));
        }
        Ok(())
    }

    async fn record_audit(&self, audit: &NewAudit) -> Result<AuditEntry> {
        let mut conn = self.pool.acquire().await?;
        insert_audit(&mut conn, audit).await
    }

    async fn query_audit(&self, q: &AuditQuery) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT * FROM audit_log
             WHERE ($1 IS NULL OR org IN (SELECT value FROM json_each($1)))
               AND ($2 IS NULL OR timestamp >= $2)
               AND ($3 IS NULL OR timestamp <= $3)
               AND ($4 IS NULL OR user_id = $4)
               AND ($5 IS NULL OR app = $5)
               AND ($6 IS NULL OR action = $6)
             ORDER BY timestamp DESC, seq DESC
             LIMIT $7",
        )
        .bind(orgs_json(q.orgs.as_deref()))
        .bind(opt_ts(q.since.map(common::trunc)))
        .bind(opt_ts(q.until.map(common::trunc)))
        .bind(&q.user_id)
        .bind(&q.app)
        .bind(&q.action)
        .bind(q.limit.map(i64::from).unwrap_or(-1))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(common::audit_from).collect()
    }

    async fn prune_audit(&self, older_than: Timestamp) -> Result<u64> {
        let done = sqlx::query("DELETE FROM audit_log WHERE timestamp < $1")
            .bind(ts(common::trunc(older_than)))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn start_cron_run(
        &self,
        app_id: Uuid,
        deployment_id: Uuid,
        service: &str,
        scheduled_at: Timestamp,
        status: &str,
    ) -> Result<CronRun> {
        let now = common::now();
        let row = sqlx::query(
            "INSERT INTO cron_runs (id, app_id, deployment_id, service, scheduled_at, started_at, finished_at, status)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *",
        )
        .bind(id(Uuid::new_v4()))
        .bind(id(app_id))
        .bind(id(deployment_id))
        .bind(service)
        .bind(ts(common::trunc(scheduled_at)))
        .bind(ts(now))
        .bind((status != "running").then_some(ts(now)))
        .bind(status)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| common::missing_ref(e, || format!("application {app_id}")))?;
        common::cron_run_from(&row)
    }

    async fn finish_cron_run(
        &self,
        run: Uuid,
        status: &str,
        exit_code: Option<i64>,
        log_tail: &str,
    ) -> Result<()> {
        let done = sqlx::query(
            "UPDATE cron_runs SET status = $2, exit_code = $3, log_tail = $4, finished_at = $5 WHERE id = $1",
        )
        .bind(id(run))
        .bind(status)
        .bind(exit_code)
        .bind(log_tail)
        .bind(ts(common::now()))
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(common::not_found(format!("cron run {run}")));
        }
        Ok(())
    }

    async fn list_cron_runs(&self, app_id: Uuid, limit: u32) -> Result<Vec<CronRun>> {
        let rows = sqlx::query(
            "SELECT * FROM cron_runs WHERE app_id = $1 ORDER BY started_at DESC, id LIMIT $2",
        )
        .bind(id(app_id))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(common::cron_run_from).collect()
    }

    async fn cron_runs_in_progress(&self) -> Result<Vec<CronRun>> {
        let rows =
            sqlx::query("SELECT * FROM cron_runs WHERE status = 'running' ORDER BY started_at")
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(common::cron_run_from).collect()
    }

    async fn record_delivery(&self, provider: &str, delivery_id: &str) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO webhook_deliveries (provider, delivery_id, received_at) VALUES ($1, $2, $3)
             ON CONFLICT (provider, delivery_id) DO NOTHING",
        )
        .bind(provider)
        .bind(delivery_id)
        .bind(ts(common::now()))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

fn bind_patch<'q>(
    q: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>,
    dep_id: Uuid,
    p: &'q DeploymentPatch,
    from: Option<DeploymentStatus>,
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments> {
    q.bind(id(dep_id))
        .bind(p.status.map(|s| s.as_str()))
        .bind(&p.image_tag)
        .bind(&p.image_digest)
        .bind(&p.git_commit)
        .bind(&p.git_message)
        .bind(&p.url)
        .bind(&p.error)
        .bind(p.manifest.as_ref().map(json_text))
        .bind(opt_ts(p.completed_at.map(common::trunc)))
        .bind(from.map(|s| s.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_locations() {
        assert_eq!(location("sqlite::memory:"), Location::Memory);
        assert_eq!(
            location("sqlite://data/hanzo.db"),
            Location::File("data/hanzo.db".into())
        );
        assert_eq!(
            location("sqlite:///var/lib/hanzo/db.sqlite?mode=rwc"),
            Location::File("/var/lib/hanzo/db.sqlite".into())
        );
        assert_eq!(location("/tmp/x.db"), Location::File("/tmp/x.db".into()));
        assert_eq!(location("sqlite:rel.db"), Location::File("rel.db".into()));
    }

    #[test]
    fn timestamps_are_fixed_width() {
        let t = chrono::DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
            .map(|t| t.with_timezone(&chrono::Utc))
            .unwrap();
        assert_eq!(ts(t), "2026-01-02T03:04:05.000000Z");
    }
}
