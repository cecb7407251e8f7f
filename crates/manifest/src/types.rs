use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// The resolved manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub name: String,
    pub org: String,
    /// As written (`auto` when omitted); see [`Runtime`].
    pub runtime: Runtime,
    pub version: Option<String>,
    pub build: BuildConfig,
    pub deploy: DeployConfig,
    pub services: Vec<Service>,
    pub env: Vec<EnvEntry>,
    pub resources: Resources,
}

impl Manifest {
    /// The first `web` service, the one that is routed.
    pub fn web_service(&self) -> Option<&Service> {
        self.services.iter().find(|s| s.kind == ServiceKind::Web)
    }
}

/// `runtime:`. Versions are kept as written (`node-22` → `Node { version: "22" }`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Runtime {
    Auto,
    Docker,
    Node { version: String },
    Python { version: String },
    Go { version: String },
    Rust { version: String },
}

impl Runtime {
    /// Family name as the API and CLI show it: `auto`, `docker`, `node`, `python`, `go`, `rust`.
    pub fn family(&self) -> &'static str {
        match self {
            Runtime::Auto => "auto",
            Runtime::Docker => "docker",
            Runtime::Node { .. } => "node",
            Runtime::Python { .. } => "python",
            Runtime::Go { .. } => "go",
            Runtime::Rust { .. } => "rust",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BuildNetwork {
    /// Builds may fetch dependencies (default).
    Default,
    /// Hermetic: no network at all during the build.
    None,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildConfig {
    /// Path of the Dockerfile relative to the repository root (default `Dockerfile`).
    pub dockerfile: String,
    /// Build context relative to the repository root (default `.`).
    pub context: String,
    /// Multi-stage target, if any.
    pub target: Option<String>,
    /// Build command for non-Docker runtimes.
    pub command: Option<String>,
    /// Build output directory (static sites).
    pub output: Option<String>,
    /// Build arguments (never secrets).
    pub args: BTreeMap<String, String>,
    pub network: BuildNetwork,
    /// Per-application build timeout (default 15 minutes).
    pub timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    Rolling,
    Recreate,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeployConfig {
    pub instances: u32,
    /// Memory limit per instance in bytes (`256Mi` → 268435456).
    pub memory_bytes: u64,
    /// CPU limit per instance in milli-CPUs (`"0.25"` → 250).
    pub cpu_millis: u32,
    pub strategy: Strategy,
    pub max_surge: u32,
    pub max_unavailable: u32,
    pub startup_timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceKind {
    Web,
    Worker,
    Cron,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Http,
    Grpc,
    Tcp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Service {
    pub kind: ServiceKind,
    /// Container port (web services).
    pub port: Option<u16>,
    pub protocol: Protocol,
    /// Command overriding the image's default, as written.
    pub command: Option<String>,
    /// Cron schedule, standard 5-field syntax (cron services).
    pub schedule: Option<String>,
    pub healthcheck: HealthCheck,
    pub domains: Vec<Domain>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthCheck {
    /// HTTP path (web services; default `/`). `None` when `exec` is used.
    pub path: Option<String>,
    /// Command run inside the instance (workers).
    pub exec: Option<Vec<String>>,
    pub interval: Duration,
    pub timeout: Duration,
    pub retries: u32,
}

/// A routed domain: host (lowercase, punycode) and optional path prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Domain {
    pub host: String,
    /// Path prefix starting with `/`, e.g. `/v2`.
    pub path: Option<String>,
}

impl std::fmt::Display for Domain {
    /// `host` or `host/path`, as written in `domains:`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", self.host, self.path.as_deref().unwrap_or(""))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvEntry {
    pub name: String,
    /// Plaintext value (when not secret).
    pub value: Option<String>,
    pub secret: bool,
    pub kms_key: Option<String>,
    /// Defaults to the app name.
    pub kms_project: Option<String>,
    /// Defaults to the deploy target's environment.
    pub kms_env: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Resources {
    pub postgres: Option<PostgresResource>,
    pub redis: Option<RedisResource>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostgresResource {
    pub version: String,
    pub storage_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedisResource {
    pub version: String,
    pub maxmemory_bytes: u64,
}
