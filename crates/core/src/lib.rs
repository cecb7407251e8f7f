//! Domain types shared by every crate of Hanzo Platform.
//!
//! The shapes follow HIP-14's `Application`, `Deployment` and `DeploymentEvent`
//! interfaces; JSON field names are camelCase exactly as the spec writes them.

mod names;
mod status;

pub use names::{NameError, image_repository, validate_name};
pub use status::{AppStatus, DeploymentStatus, EventType, Role};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Timestamps are UTC everywhere.
pub type Timestamp = DateTime<Utc>;

/// An organisation: the tenancy boundary. Every application belongs to exactly one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Org {
    pub id: Uuid,
    pub name: String,
    pub created_at: Timestamp,
}

/// A registered application (spec: `interface Application`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Application {
    pub id: Uuid,
    pub name: String,
    pub org: String,
    /// Git URL or local path of the source repository.
    pub repo: String,
    pub branch: String,
    /// `auto`, or a runtime from the manifest (`node`, `docker`, …).
    pub runtime: String,
    pub status: AppStatus,
    /// The deployment currently serving (observed healthy), if any.
    pub current_deployment_id: Option<Uuid>,
    /// The deployment the reconciler should converge to. Equal to
    /// `current_deployment_id` once a rollout has finished.
    pub desired_deployment_id: Option<Uuid>,
    /// Desired number of instances of the web service (0 = stopped).
    pub instances: u32,
    pub domains: Vec<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Where the image of a deployment comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum DeploymentSource {
    /// Clone `branch` of the application's repository and build it.
    Git { branch: String },
    /// Deploy a prebuilt image as it is.
    Image { image: String },
    /// Redeploy the image of an earlier deployment, without rebuilding.
    Rollback { of: Uuid },
}

/// One deployment of an application (spec: `interface Deployment`), plus the
/// fields the platform needs to resume it after a restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    pub id: Uuid,
    pub app_id: Uuid,
    /// Per-application sequence number, 1 for the first deployment.
    pub number: i64,
    pub source: DeploymentSource,
    /// Full image reference, e.g. `127.0.0.1:5000/hanzo-cloud:abc123f`. Empty until built.
    pub image_tag: String,
    /// Content digest (`sha256:…`) of the image actually run, once known.
    pub image_digest: Option<String>,
    /// Full commit SHA (empty for image deployments).
    pub git_commit: String,
    /// First line of the commit message.
    pub git_message: String,
    pub status: DeploymentStatus,
    /// User id of whoever asked for the deployment.
    pub deployed_by: String,
    pub started_at: Timestamp,
    pub completed_at: Option<Timestamp>,
    /// Path of the build log stream in the API.
    pub build_logs: String,
    /// Public URL of the deployed service.
    pub url: String,
    /// Why the deployment failed, as one sentence with the fix, when it did.
    pub error: Option<String>,
    /// The resolved manifest used for this deployment (JSON), once read.
    pub manifest: Option<serde_json::Value>,
}

/// A step in a deployment's life (spec: `interface DeploymentEvent`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentEvent {
    pub id: Uuid,
    pub deployment_id: Uuid,
    #[serde(rename = "type")]
    pub kind: EventType,
    pub message: String,
    pub timestamp: Timestamp,
}

/// One run of a `cron` service (a container started on its schedule).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CronRun {
    pub id: Uuid,
    pub app_id: Uuid,
    pub deployment_id: Uuid,
    /// Service id within the manifest: `cron`, `cron2`, …
    pub service: String,
    /// The schedule's tick this run is for.
    pub scheduled_at: Timestamp,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    pub exit_code: Option<i64>,
    /// `running`, `succeeded`, `failed`, or `skipped` (the previous run was still going).
    pub status: String,
    /// The last lines the run printed.
    pub log_tail: String,
}

/// A plaintext environment variable stored in the platform database.
/// Secret variables are never stored: they are references resolved from KMS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvVar {
    pub name: String,
    pub value: String,
}

/// A person or robot that can act on the platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    pub email: String,
    pub global_admin: bool,
    pub created_at: Timestamp,
}

/// Membership of a user in an organisation with a role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Membership {
    pub user_id: String,
    pub org: String,
    pub role: Role,
}

/// An API token. The secret itself is shown once and only its hash is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiToken {
    pub id: Uuid,
    pub user_id: String,
    pub name: String,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

/// One row of the audit log (spec: "Audit Logging").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    pub id: Uuid,
    pub timestamp: Timestamp,
    pub user_id: String,
    pub user_email: String,
    pub org: String,
    pub app: Option<String>,
    /// `deploy`, `rollback`, `scale`, `env.set`, `env.delete`, `domain.add`,
    /// `domain.remove`, `app.create`, `app.delete`, and `auth.denied` for refused attempts.
    pub action: String,
    pub details: serde_json::Value,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
}

/// What a mutation asks the store to record in the same transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewAudit {
    pub user_id: String,
    pub user_email: String,
    pub org: String,
    pub app: Option<String>,
    pub action: String,
    pub details: serde_json::Value,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
}
