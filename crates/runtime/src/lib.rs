//! Where applications run. A [`Target`] starts, observes and stops *instances*
//! (one container, later one pod) of an application's services. It holds no
//! state of its own: everything it knows it reads back from the engine, through
//! the labels it puts on what it creates, so a restarted platform sees exactly
//! what is running.

use async_trait::async_trait;
use secrecy::SecretString;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

pub mod docker;
pub mod health;

/// Labels every instance carries; the reconciler selects by them.
pub mod labels {
    pub const MANAGED: &str = "ai.hanzo.managed";
    pub const ORG: &str = "ai.hanzo.org";
    pub const APP: &str = "ai.hanzo.app";
    pub const SERVICE: &str = "ai.hanzo.service";
    pub const DEPLOYMENT: &str = "ai.hanzo.deployment";
    /// Container port of a web instance (so `list` can report it).
    pub const PORT: &str = "ai.hanzo.port";
    /// The platform installation that owns the instance (see `DockerTarget::with_scope`).
    pub const SCOPE: &str = "ai.hanzo.scope";
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(
        "cannot reach the Docker Engine at {endpoint}: {reason} — start dockerd (or set DOCKER_HOST) and try again"
    )]
    Unreachable { endpoint: String, reason: String },
    #[error(
        "image {image} is not in the local engine and could not be pulled: {reason} — push it to the registry or build it again"
    )]
    ImageMissing { image: String, reason: String },
    #[error("instance {name} exited right after start (exit code {exit_code}): {last_logs}")]
    Exited {
        name: String,
        exit_code: i64,
        last_logs: String,
    },
    #[error("{operation} timed out after {after:?} — the engine is overloaded or stuck; try again")]
    Timeout { operation: String, after: Duration },
    #[error("docker {operation} failed: {message}")]
    Engine { operation: String, message: String },
}

pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;

/// Everything needed to start one instance.
#[derive(Debug, Clone)]
pub struct InstanceSpec {
    /// Unique, deterministic name (so a retried start finds the first attempt),
    /// e.g. `hanzo-hello-web-<deployment-short>-<index>`.
    pub name: String,
    pub org: String,
    pub app: String,
    pub service: String,
    pub deployment_id: String,
    pub image: String,
    /// Plaintext and secret variables alike; secrets stay wrapped until handed to the engine.
    pub env: Vec<(String, SecretString)>,
    /// Container port of a web service.
    pub port: Option<u16>,
    pub command: Option<Vec<String>>,
    pub memory_bytes: Option<i64>,
    /// CPU limit in billionths of a CPU (0.25 CPU = 250_000_000).
    pub nano_cpus: Option<i64>,
    pub extra_labels: BTreeMap<String, String>,
    /// A run to completion (a cron tick): never restarted by the engine, and an
    /// exit right after start is its result, not an error.
    pub run_once: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceState {
    Created,
    Running,
    Restarting,
    Exited,
    Dead,
}

/// One instance as observed in the engine.
#[derive(Debug, Clone)]
pub struct Instance {
    pub id: String,
    pub name: String,
    pub org: String,
    pub app: String,
    pub service: String,
    pub deployment_id: String,
    /// Image reference the instance was created from.
    pub image: String,
    /// Content id of the image it runs (`sha256:…`).
    pub image_id: String,
    pub state: InstanceState,
    pub exit_code: Option<i64>,
    /// Address on the organisation's network, reachable from the host.
    pub address: Option<IpAddr>,
    pub port: Option<u16>,
    pub restart_count: i64,
}

impl Instance {
    /// `http://<address>:<port>` for the proxy, when the instance has both.
    /// Addresses can change when the engine restarts a container: derive
    /// upstreams from a fresh `list`, never from a stored copy.
    pub fn upstream(&self) -> Option<String> {
        let addr = self.address?;
        let port = self.port?;
        Some(format!("http://{}", std::net::SocketAddr::new(addr, port)))
    }

    /// Running, or being restarted by the engine after a crash.
    pub fn is_up(&self) -> bool {
        self.state == InstanceState::Running
    }
}

/// Which instances to list.
#[derive(Debug, Clone, Default)]
pub struct Selector {
    pub org: Option<String>,
    pub app: Option<String>,
    pub deployment_id: Option<String>,
}

#[async_trait]
pub trait Target: Send + Sync + 'static {
    /// Checks the engine answers; the error says how to fix it when it does not.
    async fn ping(&self) -> Result<()>;
    /// Creates the organisation's network if missing. Idempotent.
    async fn ensure_network(&self, org: &str) -> Result<()>;
    /// Creates and starts the instance; if one of that name exists, it is
    /// started if stopped and returned. Idempotent.
    async fn start(&self, spec: &InstanceSpec) -> Result<Instance>;
    /// Instances managed by the platform matching the selector, whatever their state.
    async fn list(&self, selector: &Selector) -> Result<Vec<Instance>>;
    /// Stops gracefully (SIGTERM, then SIGKILL after `grace`) and removes. A
    /// missing instance is not an error.
    async fn stop(&self, id: &str, grace: Duration) -> Result<()>;
    /// The last `lines` lines of the instance's output.
    async fn logs(&self, id: &str, lines: usize) -> Result<Vec<String>>;
    /// Content id of a local image, `None` when the engine does not have it.
    async fn image_id(&self, image: &str) -> Result<Option<String>>;
    /// Makes sure the image is present locally, pulling it when needed; returns
    /// its content id.
    async fn ensure_image(&self, image: &str) -> Result<String>;
    /// Restarts an instance in place (SIGTERM, then SIGKILL after `grace`, then
    /// start). Used when a promoted instance keeps failing its health check.
    /// Docker's own restart count does not count these restarts; the caller
    /// records them.
    async fn restart(&self, id: &str, grace: Duration) -> Result<()> {
        let _ = (id, grace);
        Err(RuntimeError::Engine {
            operation: "restart".into(),
            message: "this target cannot restart instances in place; stop the instance and start a new one".into(),
        })
    }
}
