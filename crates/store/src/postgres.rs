//! PostgreSQL store: for production and several server replicas.
//!
//! UUIDs are `UUID`, timestamps `TIMESTAMPTZ`, JSON `JSONB`. Per-app deployment
//! numbers are assigned under a row lock on the application; the build queue is
//! claimed with `FOR UPDATE SKIP LOCKED` under a transaction-scoped advisory
//! lock, so concurrent claimers (even on different hosts) never take the same
//! deployment nor two builds of one application.

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
use sqlx::postgres::{PgArguments, PgConnection, PgPool, PgPoolOptions, PgRow};
use std::time::Duration;
use uuid::Uuid;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// Serialises build claims across every server sharing the database.
const CLAIM_LOCK: i64 = 0x6861_6e7a_6f01; // arbitrary, used for nothing else

/// The PostgreSQL implementation of [`Store`].
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
}

impl Cols for PgRow {
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
        Ok(self.try_get(col)?)
    }
    fn opt_uuid(&self, col: &str) -> Result<Option<Uuid>> {
        Ok(self.try_get(col)?)
    }
    fn ts(&self, col: &str) -> Result<Timestamp> {
        Ok(self.try_get(col)?)
    }
    fn opt_ts(&self, col: &str) -> Result<Option<Timestamp>> {
        Ok(self.try_get(col)?)
    }
    fn json(&self, col: &str) -> Result<serde_json::Value> {
        Ok(self.try_get(col)?)
    }
    fn opt_json(&self, col: &str) -> Result<Option<serde_json::Value>> {
        Ok(self.try_get(col)?)
    }
}

impl PgStore {
    /// Connects to `postgres://…` (the database must exist). Does not migrate;
    /// call [`Store::migrate`] (or use [`crate::connect`]).
    pub async fn connect(url: &str) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .map_err(|source| StoreError::Connect {
                url: common::redact_url(url),
                source,
            })?;
        Ok(PgStore { pool })
    }

    /// The underlying pool (for tests and diagnostics).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes every connection; later calls fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn write_tx(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        Ok(self.pool.begin().await?)
    }
}

// ---- helpers running inside a connection or transaction -----------------

async fn ensure_org_in(conn: &mut PgConnection, name: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO orgs (id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
    )
    .bind(Uuid::now_v7())
    .bind(name)
    .bind(common::now())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn insert_audit(conn: &mut PgConnection, a: &NewAudit) -> Result<AuditEntry> {
    let row = sqlx::query(
        "INSERT INTO audit_log (id, timestamp, user_id, user_email, org, app, action, details, ip_address, user_agent)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING *",
    )
    .bind(Uuid::now_v7())
    .bind(common::now())
    .bind(&a.user_id)
    .bind(&a.user_email)
    .bind(&a.org)
    .bind(&a.app)
    .bind(&a.action)
    .bind(&a.details)
    .bind(&a.ip_address)
    .bind(&a.user_agent)
    .fetch_one(&mut *conn)
    .await?;
    common::audit_from(&row)
}

async fn maybe_audit(conn: &mut PgConnection, a: Option<&NewAudit>) -> Result<()> {
    if let Some(a) = a {
        insert_audit(conn, a).await?;
    }
    Ok(())
}

async fn domains_of(conn: &mut PgConnection, app_id: Uuid) -> Result<Vec<String>> {
    let rows = sqlx::query("SELECT domain FROM domains WHERE app_id = $1 ORDER BY domain")
        .bind(app_id)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(|r| r.text("domain")).collect()
}

async fn app_from_row(conn: &mut PgConnection, row: &PgRow) -> Result<Application> {
    let app_id = row.uuid("id")?;
    let domains = domains_of(conn, app_id).await?;
    common::app_from(row, domains)
}

async fn apps_from_rows(conn: &mut PgConnection, rows: Vec<PgRow>) -> Result<Vec<Application>> {
    let mut apps = Vec::with_capacity(rows.len());
    for row in &rows {
        apps.push(app_from_row(conn, row).await?);
    }
    Ok(apps)
}

/// `application ORG/NAME` for the app, or NotFound. With `lock`, the app row is
/// locked until the transaction ends.
async fn app_label(conn: &mut PgConnection, app_id: Uuid, lock: bool) -> Result<String> {
    let sql = if lock {
        "SELECT org, name FROM apps WHERE id = $1 FOR UPDATE"
    } else {
        "SELECT org, name FROM apps WHERE id = $1"
    };
    let row = sqlx::query(sql)
        .bind(app_id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| not_found(format!("application {app_id}")))?;
    Ok(format!(
        "application {}/{}",
        row.text("org")?,
        row.text("name")?
    ))
}

async fn deployment_in(conn: &mut PgConnection, dep_id: Uuid) -> Result<Deployment> {
    let row = sqlx::query("SELECT * FROM deployments WHERE id = $1")
        .bind(dep_id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| not_found(format!("deployment {dep_id}")))?;
    common::deployment_from(&row)
}

fn deployments_from(rows: &[PgRow]) -> Result<Vec<Deployment>> {
    rows.iter().map(common::deployment_from).collect()
}

const UPDATE_DEPLOYMENT: &str = "UPDATE deployments SET
    status = COALESCE($2::text, status),
    image_tag = COALESCE($3::text, image_tag),
    image_digest = COALESCE($4::text, image_digest),
    git_commit = COALESCE($5::text, git_commit),
    git_message = COALESCE($6::text, git_message),
    url = COALESCE($7::text, url),
    error = COALESCE($8::text, error),
    manifest = COALESCE($9::jsonb, manifest),
    completed_at = COALESCE($10::timestamptz, completed_at)
  WHERE id = $1 AND ($11::text IS NULL OR status = $11::text)
  RETURNING *";

fn bind_patch<'q>(
    q: sqlx::query::Query<'q, sqlx::Postgres, PgArguments>,
    dep_id: Uuid,
    p: &'q DeploymentPatch,
    from: Option<DeploymentStatus>,
) -> sqlx::query::Query<'q, sqlx::Postgres, PgArguments> {
    q.bind(dep_id)
        .bind(p.status.map(|s| s.as_str()))
        .bind(&p.image_tag)
        .bind(&p.image_digest)
        .bind(&p.git_commit)
        .bind(&p.git_message)
        .bind(&p.url)
        .bind(&p.error)
        .bind(&p.manifest)
        .bind(p.completed_at.map(common::trunc))
        .bind(from.map(|s| s.as_str()))
}

#[async_trait]
impl Store for PgStore {
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
        let now = common::now();
        let row = sqlx::query(
            "INSERT INTO apps (id, org, name, repo, branch, runtime, status, current_deployment_id,
                               desired_deployment_id, instances, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, NULL, 1, $8, $8) RETURNING *",
        )
        .bind(Uuid::now_v7())
        .bind(&app.org)
        .bind(&app.name)
        .bind(&app.repo)
        .bind(&app.branch)
        .bind(&app.runtime)
        .bind(hanzo_core::AppStatus::Stopped.as_str())
        .bind(now)
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
            .bind(app_id)
            .fetch_optional(&mut *conn)
            .await?
            .ok_or_else(|| not_found(format!("application {app_id}")))?;
        app_from_row(&mut conn, &row).await
    }

    async fn list_apps(&self, orgs: Option<&[String]>) -> Result<Vec<Application>> {
        let mut conn = self.pool.acquire().await?;
        let rows = sqlx::query(
            "SELECT * FROM apps WHERE ($1::text[] IS NULL OR org = ANY($1::text[])) ORDER BY org, name",
        )
        .bind(orgs.map(|o| o.to_vec()))
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
                status = COALESCE($2::text, status),
                current_deployment_id = CASE WHEN $3::boolean THEN $4::uuid ELSE current_deployment_id END,
                desired_deployment_id = CASE WHEN $5::boolean THEN $6::uuid ELSE desired_deployment_id END,
                instances = COALESCE($7::bigint, instances),
                branch = COALESCE($8::text, branch),
                repo = COALESCE($9::text, repo),
                updated_at = $10
             WHERE id = $1 RETURNING *",
        )
        .bind(app_id)
        .bind(patch.status.map(|s| s.as_str()))
        .bind(patch.current_deployment_id.is_some())
        .bind(patch.current_deployment_id.flatten())
        .bind(patch.desired_deployment_id.is_some())
        .bind(patch.desired_deployment_id.flatten())
        .bind(patch.instances.map(i64::from))
        .bind(&patch.branch)
        .bind(&patch.repo)
        .bind(common::now())
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
            .bind(app_id)
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
        let rows = sqlx::query("SELECT * FROM apps WHERE repo = ANY($1) ORDER BY org, name")
            .bind(common::repo_candidates(repo).to_vec())
            .fetch_all(&mut *conn)
            .await?;
        apps_from_rows(&mut conn, rows).await
    }

    async fn add_domain(&self, app_id: Uuid, domain: &str, audit: Option<&NewAudit>) -> Result<()> {
        let domain = normalize_domain(domain);
        let mut tx = self.write_tx().await?;
        app_label(&mut tx, app_id, false).await?;
        let holder = sqlx::query(
            "SELECT a.org, a.name FROM domains d JOIN apps a ON a.id = d.app_id WHERE d.domain = $1",
        )
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
            .bind(app_id)
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
        let label = app_label(&mut tx, app_id, false).await?;
        let done = sqlx::query("DELETE FROM domains WHERE app_id = $1 AND domain = $2")
            .bind(app_id)
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
        app_label(&mut tx, app_id, false).await?;
        sqlx::query(
            "INSERT INTO env_vars (app_id, name, value) VALUES ($1, $2, $3)
             ON CONFLICT (app_id, name) DO UPDATE SET value = excluded.value",
        )
        .bind(app_id)
        .bind(&var.name)
        .bind(&var.value)
        .execute(&mut *tx)
        .await
        .map_err(|e| missing_ref(e, || format!("application {app_id}")))?;
        maybe_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn delete_env(&self, app_id: Uuid, name: &str, audit: Option<&NewAudit>) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let label = app_label(&mut tx, app_id, false).await?;
        let done = sqlx::query("DELETE FROM env_vars WHERE app_id = $1 AND name = $2")
            .bind(app_id)
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
        app_label(&mut conn, app_id, false).await?;
        let rows = sqlx::query("SELECT name, value FROM env_vars WHERE app_id = $1 ORDER BY name")
            .bind(app_id)
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
        // The row lock on the app serialises numbering per application.
        app_label(&mut tx, new.app_id, true).await?;
        let number: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(number), 0) + 1 FROM deployments WHERE app_id = $1",
        )
        .bind(new.app_id)
        .fetch_one(&mut *tx)
        .await?;
        let row = sqlx::query(
            "INSERT INTO deployments (id, app_id, number, source, source_kind, image_tag, image_digest,
                                      git_commit, git_message, status, deployed_by, started_at,
                                      completed_at, url, error, manifest)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, NULL, $13, NULL, NULL)
             RETURNING *",
        )
        .bind(Uuid::now_v7())
        .bind(new.app_id)
        .bind(number)
        .bind(common::source_json(&new.source))
        .bind(common::source_kind(&new.source))
        .bind(&new.image_tag)
        .bind(&new.image_digest)
        .bind(&new.git_commit)
        .bind(&new.git_message)
        .bind(DeploymentStatus::Queued.as_str())
        .bind(&new.deployed_by)
        .bind(common::now())
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
        .bind(app_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        deployments_from(&rows)
    }

    async fn deployments_in(&self, statuses: &[DeploymentStatus]) -> Result<Vec<Deployment>> {
        let names: Vec<&str> = statuses.iter().map(|s| s.as_str()).collect();
        let rows = sqlx::query(
            "SELECT * FROM deployments WHERE status = ANY($1) ORDER BY started_at, number, id",
        )
        .bind(names)
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
        let mut conn = self.pool.acquire().await?;
        // A concurrent writer holds the row lock; once it commits, PostgreSQL
        // re-checks `status = from` on the new row version, so only one wins.
        let row = bind_patch(sqlx::query(UPDATE_DEPLOYMENT), dep_id, &patch, Some(from))
            .fetch_optional(&mut *conn)
            .await?;
        match row {
            Some(row) => common::deployment_from(&row),
            None => {
                let actual = deployment_in(&mut conn, dep_id).await?;
                Err(StoreError::StaleStatus {
                    expected: from.as_str().to_string(),
                    actual: actual.status.as_str().to_string(),
                })
            }
        }
    }

    async fn claim_next_build(&self) -> Result<Option<Deployment>> {
        let mut tx = self.write_tx().await?;
        // Claimers take turns (the lock is released at commit), and each looks
        // with a fresh snapshot, so a build that just started holds its app.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(CLAIM_LOCK)
            .execute(&mut *tx)
            .await?;
        let next: Option<Uuid> = sqlx::query_scalar(
            "SELECT d.id FROM deployments d
             WHERE d.status = 'queued' AND d.source_kind = 'git'
               AND NOT EXISTS (SELECT 1 FROM deployments b
                               WHERE b.app_id = d.app_id AND b.status IN ('building', 'pushing'))
             ORDER BY d.started_at, d.number
             LIMIT 1
             FOR UPDATE OF d SKIP LOCKED",
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(next) = next else {
            return Ok(None);
        };
        let row = sqlx::query("UPDATE deployments SET status = 'building' WHERE id = $1 AND status = 'queued' RETURNING *")
            .bind(next)
            .fetch_one(&mut *tx)
            .await?;
        let dep = common::deployment_from(&row)?;
        tx.commit().await?;
        Ok(Some(dep))
    }

    async fn prune_deployments(&self, app_id: Uuid, keep: u32) -> Result<Vec<Deployment>> {
        let mut tx = self.write_tx().await?;
        // Locked so the current/desired pointers cannot move while we delete.
        app_label(&mut tx, app_id, true).await?;
        let rows = sqlx::query(
            "DELETE FROM deployments
             WHERE app_id = $1
               AND id NOT IN (SELECT id FROM deployments WHERE app_id = $1 ORDER BY number DESC LIMIT $2)
               AND id NOT IN (SELECT current_deployment_id FROM apps WHERE id = $1 AND current_deployment_id IS NOT NULL)
               AND id NOT IN (SELECT desired_deployment_id FROM apps WHERE id = $1 AND desired_deployment_id IS NOT NULL)
               AND status NOT IN ('building', 'pushing', 'deploying')
             RETURNING *",
        )
        .bind(app_id)
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
        .bind(Uuid::now_v7())
        .bind(deployment_id)
        .bind(kind.as_str())
        .bind(message)
        .bind(common::now())
        .fetch_one(&self.pool)
        .await
        .map_err(|e| missing_ref(e, || format!("deployment {deployment_id}")))?;
        common::event_from(&row)
    }

    async fn list_events(&self, deployment_id: Uuid) -> Result<Vec<DeploymentEvent>> {
        let rows =
            sqlx::query("SELECT * FROM deployment_events WHERE deployment_id = $1 ORDER BY seq")
                .bind(deployment_id)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(common::event_from).collect()
    }

    async fn append_log(&self, deployment_id: Uuid, text: &str) -> Result<LogChunk> {
        let mut tx = self.write_tx().await?;
        // Appends to one deployment take turns, so seq stays gapless and unique.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1::text, 0))")
            .bind(deployment_id)
            .execute(&mut *tx)
            .await?;
        let row = sqlx::query(
            "INSERT INTO build_logs (deployment_id, seq, at, text)
             SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3 FROM build_logs WHERE deployment_id = $1
             RETURNING seq, at, text",
        )
        .bind(deployment_id)
        .bind(common::now())
        .bind(text)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| missing_ref(e, || format!("deployment {deployment_id}")))?;
        let chunk = common::log_from(&row)?;
        tx.commit().await?;
        Ok(chunk)
    }

    async fn read_log(&self, deployment_id: Uuid, after: i64) -> Result<Vec<LogChunk>> {
        let rows =
            sqlx::query("SELECT seq, at, text FROM build_logs WHERE deployment_id = $1 AND seq > $2 ORDER BY seq")
                .bind(deployment_id)
                .bind(after)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(common::log_from).collect()
    }

    async fn prune_logs(&self, older_than: Timestamp) -> Result<u64> {
        let done = sqlx::query("DELETE FROM build_logs WHERE at < $1")
            .bind(common::trunc(older_than))
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
        .bind(common::now())
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
        .bind(Uuid::now_v7())
        .bind(user_id)
        .bind(name)
        .bind(secret_sha256)
        .bind(common::now())
        .bind(expires_at.map(common::trunc))
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
        .bind(common::trunc(now))
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
        let done =
            sqlx::query("UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $3) WHERE id = $1 AND user_id = $2")
                .bind(token_id)
                .bind(user_id)
                .bind(common::now())
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
             WHERE ($1::text[] IS NULL OR org = ANY($1::text[]))
               AND ($2::timestamptz IS NULL OR timestamp >= $2::timestamptz)
               AND ($3::timestamptz IS NULL OR timestamp <= $3::timestamptz)
               AND ($4::text IS NULL OR user_id = $4::text)
               AND ($5::text IS NULL OR app = $5::text)
               AND ($6::text IS NULL OR action = $6::text)
             ORDER BY timestamp DESC, seq DESC
             LIMIT $7",
        )
        .bind(q.orgs.clone())
        .bind(q.since.map(common::trunc))
        .bind(q.until.map(common::trunc))
        .bind(&q.user_id)
        .bind(&q.app)
        .bind(&q.action)
        .bind(q.limit.map(i64::from))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(common::audit_from).collect()
    }

    async fn prune_audit(&self, older_than: Timestamp) -> Result<u64> {
        let done = sqlx::query("DELETE FROM audit_log WHERE timestamp < $1")
            .bind(common::trunc(older_than))
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
        .bind(Uuid::new_v4())
        .bind(app_id)
        .bind(deployment_id)
        .bind(service)
        .bind(common::trunc(scheduled_at))
        .bind(now)
        .bind((status != "running").then_some(now))
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
        .bind(run)
        .bind(status)
        .bind(exit_code)
        .bind(log_tail)
        .bind(common::now())
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
        .bind(app_id)
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
        .bind(common::now())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
