//! The platform's state: applications, deployments and their events, build logs,
//! env vars, users, tokens and the audit log.
//!
//! [`Store`] is the only way the rest of the platform touches the database. Two
//! implementations pass the same test suite: [`sqlite::SqliteStore`] (the embedded
//! default) and [`postgres::PgStore`] (production). Every mutation that maps to an
//! audited action takes an optional [`NewAudit`] and writes it in the same
//! transaction as the change, so a failed change leaves no audit row and a
//! recorded action always happened.

use async_trait::async_trait;
use hanzo_core::{
    ApiToken, AppStatus, Application, AuditEntry, CronRun, Deployment, DeploymentEvent,
    DeploymentSource, DeploymentStatus, EnvVar, EventType, Membership, NewAudit, Role, Timestamp,
    User,
};
use uuid::Uuid;

mod common;
pub mod postgres;
pub mod sqlite;

/// Errors from the store. Messages name the cause and what to do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{what} not found")]
    NotFound { what: String },
    #[error("{what} already exists")]
    Conflict { what: String },
    #[error(
        "the deployment is {actual}, not {expected}; it was changed by someone else — reload and try again"
    )]
    StaleStatus { expected: String, actual: String },
    #[error(
        "cannot reach the database at {url}: {source} — check DATABASE_URL and that the database is running"
    )]
    Connect {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("corrupt value in the database: {0}")]
    Corrupt(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What is needed to register an application.
#[derive(Debug, Clone)]
pub struct NewApp {
    pub name: String,
    pub org: String,
    pub repo: String,
    pub branch: String,
    pub runtime: String,
}

/// What is needed to record a deployment request. It is stored as `queued`.
#[derive(Debug, Clone)]
pub struct NewDeployment {
    pub app_id: Uuid,
    pub source: DeploymentSource,
    pub deployed_by: String,
    /// For image and rollback deployments the image is known up front.
    pub image_tag: String,
    pub image_digest: Option<String>,
    pub git_commit: String,
    pub git_message: String,
    pub url: String,
}

/// A partial update of a deployment. `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct DeploymentPatch {
    pub status: Option<DeploymentStatus>,
    pub image_tag: Option<String>,
    pub image_digest: Option<String>,
    pub git_commit: Option<String>,
    pub git_message: Option<String>,
    pub url: Option<String>,
    pub error: Option<String>,
    pub manifest: Option<serde_json::Value>,
    pub completed_at: Option<Timestamp>,
}

/// A partial update of an application's desired/observed state.
#[derive(Debug, Clone, Default)]
pub struct AppPatch {
    pub status: Option<AppStatus>,
    /// `Some(None)` clears the field.
    pub current_deployment_id: Option<Option<Uuid>>,
    pub desired_deployment_id: Option<Option<Uuid>>,
    pub instances: Option<u32>,
    pub branch: Option<String>,
    pub repo: Option<String>,
}

/// Filters of the audit log query. Every `None` matches all.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Restrict to these organisations; `None` = all (global admins).
    pub orgs: Option<Vec<String>>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    pub user_id: Option<String>,
    pub app: Option<String>,
    pub action: Option<String>,
    pub limit: Option<u32>,
}

/// A chunk of a deployment's build log, already scrubbed of secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogChunk {
    /// Monotonic per deployment, starting at 1; pass the last one seen to read on.
    pub seq: i64,
    pub at: Timestamp,
    pub text: String,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Applies pending migrations. Safe to call on every start.
    async fn migrate(&self) -> Result<()>;

    // ---- organisations -------------------------------------------------
    /// Creates the organisation if it does not exist. Idempotent.
    async fn ensure_org(&self, name: &str) -> Result<()>;
    async fn list_orgs(&self) -> Result<Vec<String>>;

    // ---- applications --------------------------------------------------
    /// Conflict if an app of that name exists in the org. Creates the org if
    /// needed. A new app is `stopped` with 1 instance and no deployments.
    async fn create_app(&self, app: NewApp, audit: Option<&NewAudit>) -> Result<Application>;
    async fn get_app(&self, org: &str, name: &str) -> Result<Application>;
    async fn get_app_by_id(&self, id: Uuid) -> Result<Application>;
    /// Applications of the given orgs (all orgs when `None`), ordered by org then name.
    async fn list_apps(&self, orgs: Option<&[String]>) -> Result<Vec<Application>>;
    async fn update_app(
        &self,
        id: Uuid,
        patch: AppPatch,
        audit: Option<&NewAudit>,
    ) -> Result<Application>;
    /// Deletes the app with its deployments, events, logs, env vars and domains.
    async fn delete_app(&self, id: Uuid, audit: Option<&NewAudit>) -> Result<()>;
    /// Applications by repository URL/path (for webhooks); `.git` and a trailing
    /// slash do not matter.
    async fn find_apps_by_repo(&self, repo: &str) -> Result<Vec<Application>>;

    // ---- domains and env vars ------------------------------------------
    /// Conflict when the domain is already routed to any application.
    async fn add_domain(&self, app_id: Uuid, domain: &str, audit: Option<&NewAudit>) -> Result<()>;
    async fn remove_domain(
        &self,
        app_id: Uuid,
        domain: &str,
        audit: Option<&NewAudit>,
    ) -> Result<()>;
    async fn set_env(&self, app_id: Uuid, var: &EnvVar, audit: Option<&NewAudit>) -> Result<()>;
    async fn delete_env(&self, app_id: Uuid, name: &str, audit: Option<&NewAudit>) -> Result<()>;
    /// Sorted by name; NotFound when the app does not exist.
    async fn list_env(&self, app_id: Uuid) -> Result<Vec<EnvVar>>;

    // ---- deployments ---------------------------------------------------
    /// Stores the deployment as `queued` with the next per-app number, and
    /// the audit row (action `deploy` or `rollback`) in the same transaction.
    async fn create_deployment(
        &self,
        new: NewDeployment,
        audit: Option<&NewAudit>,
    ) -> Result<Deployment>;
    async fn get_deployment(&self, id: Uuid) -> Result<Deployment>;
    /// Newest first.
    async fn list_deployments(&self, app_id: Uuid, limit: u32) -> Result<Vec<Deployment>>;
    /// Every deployment (of any app) in one of these statuses, oldest first.
    async fn deployments_in(&self, statuses: &[DeploymentStatus]) -> Result<Vec<Deployment>>;
    async fn update_deployment(&self, id: Uuid, patch: DeploymentPatch) -> Result<Deployment>;
    /// Compare-and-set of the status: fails with `StaleStatus` when the current
    /// status is not `from`. Used to claim work exactly once.
    async fn transition_deployment(
        &self,
        id: Uuid,
        from: DeploymentStatus,
        patch: DeploymentPatch,
    ) -> Result<Deployment>;
    /// Oldest queued deployment whose app has no deployment building or pushing,
    /// atomically moved to `building`. `None` when there is nothing to do.
    async fn claim_next_build(&self) -> Result<Option<Deployment>>;
    /// Deletes all but the newest `keep` deployments of the app (with their
    /// events and logs); returns the deleted ones so their images can be pruned.
    /// Never deletes the app's current or desired deployment, nor one a worker
    /// holds (`building`, `pushing`, `deploying`). Returned newest first.
    async fn prune_deployments(&self, app_id: Uuid, keep: u32) -> Result<Vec<Deployment>>;

    // ---- events and build logs -----------------------------------------
    async fn add_event(
        &self,
        deployment_id: Uuid,
        kind: EventType,
        message: &str,
    ) -> Result<DeploymentEvent>;
    /// Oldest first.
    async fn list_events(&self, deployment_id: Uuid) -> Result<Vec<DeploymentEvent>>;
    async fn append_log(&self, deployment_id: Uuid, text: &str) -> Result<LogChunk>;
    /// Chunks with `seq > after`, oldest first.
    async fn read_log(&self, deployment_id: Uuid, after: i64) -> Result<Vec<LogChunk>>;
    /// Deletes log chunks older than the cutoff; returns how many.
    async fn prune_logs(&self, older_than: Timestamp) -> Result<u64>;

    // ---- users, memberships, tokens --------------------------------------
    async fn upsert_user(&self, id: &str, email: &str, global_admin: bool) -> Result<User>;
    async fn get_user(&self, id: &str) -> Result<User>;
    /// Creates or changes the role; creates the org if needed; NotFound for an unknown user.
    async fn set_membership(&self, user_id: &str, org: &str, role: Role) -> Result<()>;
    async fn remove_membership(&self, user_id: &str, org: &str) -> Result<()>;
    async fn memberships(&self, user_id: &str) -> Result<Vec<Membership>>;
    async fn org_members(&self, org: &str) -> Result<Vec<Membership>>;
    /// Stores a token by the SHA-256 hex of its secret.
    async fn create_token(
        &self,
        user_id: &str,
        name: &str,
        secret_sha256: &str,
        expires_at: Option<Timestamp>,
    ) -> Result<ApiToken>;
    /// The token and its user, if the hash matches a token that is neither revoked nor expired.
    async fn find_token(
        &self,
        secret_sha256: &str,
        now: Timestamp,
    ) -> Result<Option<(ApiToken, User)>>;
    async fn list_tokens(&self, user_id: &str) -> Result<Vec<ApiToken>>;
    async fn revoke_token(&self, user_id: &str, token_id: Uuid) -> Result<()>;

    // ---- audit -----------------------------------------------------------
    /// For actions with no other change (e.g. a refused attempt).
    async fn record_audit(&self, audit: &NewAudit) -> Result<AuditEntry>;
    /// Newest first. `since` and `until` are inclusive; `orgs: Some(vec![])`
    /// matches nothing.
    async fn query_audit(&self, q: &AuditQuery) -> Result<Vec<AuditEntry>>;
    async fn prune_audit(&self, older_than: Timestamp) -> Result<u64>;

    // ---- cron runs ---------------------------------------------------------
    /// Records the start of a run (status `running`, or `skipped` for a tick
    /// dropped because the previous run was still going).
    async fn start_cron_run(
        &self,
        app_id: Uuid,
        deployment_id: Uuid,
        service: &str,
        scheduled_at: Timestamp,
        status: &str,
    ) -> Result<CronRun>;
    async fn finish_cron_run(
        &self,
        id: Uuid,
        status: &str,
        exit_code: Option<i64>,
        log_tail: &str,
    ) -> Result<()>;
    /// Newest first.
    async fn list_cron_runs(&self, app_id: Uuid, limit: u32) -> Result<Vec<CronRun>>;
    /// Runs of every app still marked `running` (to finish after a restart).
    async fn cron_runs_in_progress(&self) -> Result<Vec<CronRun>>;

    // ---- webhook deliveries ----------------------------------------------
    /// Records a delivery id; false when it was seen before (a redelivery).
    async fn record_delivery(&self, provider: &str, delivery_id: &str) -> Result<bool>;
}

/// Opens the store named by a URL: `sqlite://PATH`, `sqlite::memory:` or a bare
/// path (file and parent directory created if missing), or
/// `postgres://…`, and applies migrations.
pub async fn connect(url: &str) -> Result<std::sync::Arc<dyn Store>> {
    let store: std::sync::Arc<dyn Store> =
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            std::sync::Arc::new(postgres::PgStore::connect(url).await?)
        } else {
            std::sync::Arc::new(sqlite::SqliteStore::connect(url).await?)
        };
    store.migrate().await?;
    Ok(store)
}
