//! Docker target: one container per instance, one bridge network per
//! organisation, everything found again through labels.
//!
//! Choices worth knowing:
//! - **Networks.** Each organisation gets the bridge network `hanzo-org-<org>`
//!   (labelled [`labels::MANAGED`] and [`labels::ORG`]). Containers of one
//!   organisation talk to each other on it (inter-container communication is
//!   on inside a network); Docker's `DOCKER-ISOLATION-STAGE-*` iptables chains
//!   drop traffic between two different bridge networks, so an instance of one
//!   organisation cannot open a connection to another organisation's instance.
//!   The host is the gateway of every bridge network and reaches every
//!   container's address directly, which is how Traefik (running on the host)
//!   and the platform's health checks reach instances. No port is published.
//!   Docker's default address pools hold about 30 bridge networks; more
//!   organisations on one engine need `default-address-pools` in `daemon.json`.
//! - **Restart policy.** `on-failure` with at most [`RESTART_MAX_RETRIES`]
//!   retries: a crash is restarted right away by the engine, even while the
//!   platform is down, but a crash loop ends quickly with the instance exited
//!   and its restart count visible, for the platform to decide (replace it,
//!   mark the deployment failed). `always`/`unless-stopped` would hide a crash
//!   loop and fight the platform when it stops instances.
//! - **Init.** Containers run with Docker's init (`--init`), so SIGTERM reaches
//!   applications that run as PID 1 without signal handlers (python, node) and
//!   graceful stops do not wait for the kill timeout.
//! - **Logs.** `json-file` with rotation (3 × 10 MB) so a chatty app cannot fill the disk.
//! - Engine API 1.41 (Docker 20.10) has no duplicate-name check for networks
//!   unless asked, and bollard cannot ask; `ensure_network` therefore
//!   serialises creation within the process and removes duplicates a
//!   concurrent creator may have made (the oldest network wins).

use crate::{
    Instance, InstanceSpec, InstanceState, Result, RuntimeError, Selector, Target, labels,
};
use async_trait::async_trait;
use bollard::Docker;
use bollard::errors::Error as BollardError;
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, ContainerStateStatusEnum, EndpointSettings,
    HostConfig, HostConfigLogConfig, NetworkCreateRequest, NetworkingConfig, RestartPolicy,
    RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, ListContainersOptionsBuilder,
    ListNetworksOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    RestartContainerOptionsBuilder, StopContainerOptionsBuilder,
};
use futures_util::StreamExt;
use secrecy::ExposeSecret;
use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::time::Duration;
use tokio::sync::Mutex;

/// How many times the engine restarts a crashed instance before leaving it exited.
pub const RESTART_MAX_RETRIES: i64 = 3;
/// Default time limit of one engine call.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Default time limit of an image pull.
pub const DEFAULT_PULL_TIMEOUT: Duration = Duration::from_secs(600);
/// Default time `start` watches a new instance for an immediate exit.
pub const DEFAULT_START_SETTLE: Duration = Duration::from_millis(300);

/// Scope of a target unless [`DockerTarget::with_scope`] says otherwise.
pub const DEFAULT_SCOPE: &str = "default";

const DEFAULT_SOCKET: &str = "unix:///var/run/docker.sock";

/// Name of an organisation's network.
pub fn network_name(org: &str) -> String {
    format!("hanzo-org-{org}")
}

/// The Docker Engine as a [`Target`].
pub struct DockerTarget {
    docker: Docker,
    endpoint: String,
    call_timeout: Duration,
    pull_timeout: Duration,
    start_settle: Duration,
    network_lock: Mutex<()>,
    scope: String,
}

impl std::fmt::Debug for DockerTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerTarget")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl DockerTarget {
    /// Connects to `DOCKER_HOST` (`unix://…`, `tcp://…`, `http://…`) or the
    /// local socket. Nothing is sent yet: call [`Target::ping`] to check the
    /// engine answers.
    pub fn connect() -> Result<Self> {
        let endpoint = std::env::var("DOCKER_HOST")
            .ok()
            .filter(|h| !h.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_SOCKET.to_string());
        Self::connect_to(&endpoint)
    }

    /// Connects to the given endpoint (`unix:///var/run/docker.sock`, `tcp://host:2375`).
    pub fn connect_to(endpoint: &str) -> Result<Self> {
        let docker = if endpoint.starts_with('/') {
            Docker::connect_with_host(&format!("unix://{endpoint}"))
        } else {
            Docker::connect_with_host(endpoint)
        }
        .map_err(|e| RuntimeError::Unreachable {
            endpoint: endpoint.to_string(),
            reason: e.to_string(),
        })?;
        Ok(DockerTarget {
            // bollard's own limit is a backstop; every call below has a tighter one.
            docker: docker.with_timeout(DEFAULT_PULL_TIMEOUT + Duration::from_secs(60)),
            endpoint: endpoint.to_string(),
            call_timeout: DEFAULT_CALL_TIMEOUT,
            pull_timeout: DEFAULT_PULL_TIMEOUT,
            start_settle: DEFAULT_START_SETTLE,
            network_lock: Mutex::new(()),
            scope: DEFAULT_SCOPE.to_string(),
        })
    }

    /// Time limit of each engine call (default 30 s).
    pub fn with_call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// Time limit of an image pull (default 10 min).
    pub fn with_pull_timeout(mut self, timeout: Duration) -> Self {
        self.pull_timeout = timeout;
        self
    }

    /// How long `start` watches a new instance for an immediate exit (default
    /// 300 ms). Zero checks once, right after the start.
    /// The installation this target works for (default [`DEFAULT_SCOPE`]).
    /// Instances carry it as the label [`labels::SCOPE`] and `list` sees only
    /// its own scope, so two platforms (or a platform and its tests) sharing
    /// one engine never list, and so never stop, each other's instances.
    pub fn with_scope(mut self, scope: &str) -> Self {
        self.scope = scope.to_string();
        self
    }

    pub fn scope(&self) -> &str {
        &self.scope
    }

    pub fn with_start_settle(mut self, settle: Duration) -> Self {
        self.start_settle = settle;
        self
    }

    /// The engine endpoint, for messages.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The underlying client, for calls this type does not wrap.
    pub fn client(&self) -> &Docker {
        &self.docker
    }

    /// Runs one engine call with the call timeout, mapping errors.
    async fn call<T, F>(&self, operation: &str, fut: F) -> Result<T>
    where
        F: Future<Output = Result<T, BollardError>>,
    {
        self.call_within(operation, self.call_timeout, fut).await
    }

    async fn call_within<T, F>(&self, operation: &str, limit: Duration, fut: F) -> Result<T>
    where
        F: Future<Output = Result<T, BollardError>>,
    {
        match tokio::time::timeout(limit, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(self.map_err(operation, e)),
            Err(_) => Err(RuntimeError::Timeout {
                operation: format!("docker {operation}"),
                after: limit,
            }),
        }
    }

    fn map_err(&self, operation: &str, e: BollardError) -> RuntimeError {
        match e {
            BollardError::DockerResponseServerError {
                status_code,
                message,
            } => RuntimeError::Engine {
                operation: operation.to_string(),
                message: format!("{message} (HTTP {status_code})"),
            },
            BollardError::RequestTimeoutError => RuntimeError::Timeout {
                operation: format!("docker {operation}"),
                after: self.call_timeout,
            },
            BollardError::SocketNotFoundError(_)
            | BollardError::HyperLegacyError { .. }
            | BollardError::IOError { .. }
            | BollardError::HttpClientError { .. } => RuntimeError::Unreachable {
                endpoint: self.endpoint.clone(),
                reason: e.to_string(),
            },
            other => RuntimeError::Engine {
                operation: operation.to_string(),
                message: other.to_string(),
            },
        }
    }

    /// Id of the organisation's network, creating it when missing. Idempotent,
    /// safe to call concurrently.
    pub async fn ensure_network_id(&self, org: &str) -> Result<String> {
        validate_org(org)?;
        let _guard = self.network_lock.lock().await;
        let name = network_name(org);
        if let Some(id) = self.find_network(&name).await? {
            return Ok(id);
        }
        let mut net_labels = HashMap::new();
        net_labels.insert(labels::MANAGED.to_string(), "true".to_string());
        net_labels.insert(labels::ORG.to_string(), org.to_string());
        let mut options = HashMap::new();
        // Instances of one organisation may talk to each other (an app and its
        // database); other organisations are cut off by Docker's isolation chains.
        options.insert(
            "com.docker.network.bridge.enable_icc".to_string(),
            "true".to_string(),
        );
        options.insert(
            "com.docker.network.bridge.enable_ip_masquerade".to_string(),
            "true".to_string(),
        );
        let request = NetworkCreateRequest {
            name: name.clone(),
            driver: Some("bridge".to_string()),
            internal: Some(false),
            attachable: Some(true),
            labels: Some(net_labels),
            options: Some(options),
            ..Default::default()
        };
        self.call("network create", self.docker.create_network(request))
            .await?;
        tracing::info!(network = %name, "created the organisation's network");
        // A concurrent creator (another process) may have made a twin.
        self.find_network(&name)
            .await?
            .ok_or_else(|| RuntimeError::Engine {
                operation: "network create".into(),
                message: format!("network {name} vanished right after it was created; try again"),
            })
    }

    /// The id of the network named exactly `name`; removes younger duplicates.
    async fn find_network(&self, name: &str) -> Result<Option<String>> {
        let mut filters = HashMap::new();
        filters.insert("name".to_string(), vec![name.to_string()]);
        let options = ListNetworksOptionsBuilder::new().filters(&filters).build();
        let networks = self
            .call("network ls", self.docker.list_networks(Some(options)))
            .await?;
        let mut exact: Vec<(String, String)> = networks
            .into_iter()
            .filter(|n| n.name.as_deref() == Some(name))
            .filter_map(|n| Some((n.created.map(|c| c.to_string()).unwrap_or_default(), n.id?)))
            .collect();
        exact.sort();
        let mut it = exact.into_iter();
        let Some((_, keep)) = it.next() else {
            return Ok(None);
        };
        for (_, dup) in it {
            tracing::warn!(network = %name, id = %dup, "removing a duplicate network");
            if let Err(e) = self
                .call("network rm", self.docker.remove_network(&dup))
                .await
            {
                tracing::warn!(network = %name, id = %dup, error = %e, "could not remove a duplicate network");
            }
        }
        Ok(Some(keep))
    }

    /// Removes the organisation's network (it must have no containers left).
    /// A missing network is not an error.
    pub async fn remove_network(&self, org: &str) -> Result<()> {
        let name = network_name(org);
        let _guard = self.network_lock.lock().await;
        while let Some(id) = self.find_network(&name).await? {
            match self
                .call("network rm", self.docker.remove_network(&id))
                .await
            {
                Ok(()) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Inspects one container; `None` when it does not exist.
    pub async fn inspect(&self, id: &str) -> Result<Option<Instance>> {
        Ok(self.inspect_raw(id).await?.map(|c| to_instance(&c)))
    }

    async fn inspect_raw(&self, id: &str) -> Result<Option<ContainerInspectResponse>> {
        match self
            .call("inspect", self.docker.inspect_container(id, None))
            .await
        {
            Ok(c) => Ok(Some(c)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn create_body(&self, spec: &InstanceSpec, network: &str) -> ContainerCreateBody {
        let mut l: HashMap<String, String> = spec
            .extra_labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        l.insert(labels::MANAGED.into(), "true".into());
        l.insert(labels::SCOPE.into(), self.scope.clone());
        l.insert(labels::ORG.into(), spec.org.clone());
        l.insert(labels::APP.into(), spec.app.clone());
        l.insert(labels::SERVICE.into(), spec.service.clone());
        l.insert(labels::DEPLOYMENT.into(), spec.deployment_id.clone());
        if let Some(port) = spec.port {
            l.insert(labels::PORT.into(), port.to_string());
        }
        let env: Vec<String> = spec
            .env
            .iter()
            .map(|(k, v)| format!("{k}={}", v.expose_secret()))
            .collect();
        let mut endpoints = HashMap::new();
        endpoints.insert(network.to_string(), EndpointSettings::default());
        let mut log_opts = HashMap::new();
        log_opts.insert("max-size".to_string(), "10m".to_string());
        log_opts.insert("max-file".to_string(), "3".to_string());
        ContainerCreateBody {
            image: Some(spec.image.clone()),
            cmd: spec.command.clone(),
            env: Some(env),
            labels: Some(l),
            host_config: Some(HostConfig {
                memory: spec.memory_bytes,
                nano_cpus: spec.nano_cpus,
                init: Some(true),
                network_mode: Some(network.to_string()),
                restart_policy: Some(if spec.run_once {
                    RestartPolicy {
                        name: Some(RestartPolicyNameEnum::NO),
                        maximum_retry_count: None,
                    }
                } else {
                    RestartPolicy {
                        name: Some(RestartPolicyNameEnum::ON_FAILURE),
                        maximum_retry_count: Some(RESTART_MAX_RETRIES),
                    }
                }),
                log_config: Some(HostConfigLogConfig {
                    typ: Some("json-file".into()),
                    config: Some(log_opts),
                }),
                ..Default::default()
            }),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(endpoints),
            }),
            ..Default::default()
        }
    }

    /// Watches a just-started container for the settle window; an exit (or an
    /// engine restart after a crash) is an error carrying the last log lines.
    async fn settle(&self, name: &str) -> Result<Instance> {
        let deadline = tokio::time::Instant::now() + self.start_settle;
        // An instance the engine already restarted is watched a little longer,
        // to catch its next exit (and the exit code) or see it stay up.
        let restarted_deadline = deadline + Duration::from_secs(2);
        loop {
            let Some(c) = self.inspect_raw(name).await? else {
                return Err(RuntimeError::Engine {
                    operation: "start".into(),
                    message: format!(
                        "container {name} disappeared right after it was started; something else removed it"
                    ),
                });
            };
            let inst = to_instance(&c);
            let crashed = matches!(
                inst.state,
                InstanceState::Exited | InstanceState::Dead | InstanceState::Restarting
            );
            if crashed {
                let exit_code = c.state.as_ref().and_then(|s| s.exit_code).unwrap_or(-1);
                let last_logs = match self.logs(name, 20).await {
                    Ok(lines) if lines.is_empty() => "(no output)".to_string(),
                    Ok(lines) => lines.join("\n"),
                    Err(e) => format!("(logs unavailable: {e})"),
                };
                return Err(RuntimeError::Exited {
                    name: name.to_string(),
                    exit_code,
                    last_logs,
                });
            }
            let now = tokio::time::Instant::now();
            if now >= deadline && (inst.restart_count == 0 || now >= restarted_deadline) {
                return Ok(inst);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn validate_org(org: &str) -> Result<()> {
    let ok = !org.is_empty()
        && org.len() <= 50
        && org
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
    if ok {
        Ok(())
    } else {
        Err(RuntimeError::Engine {
            operation: "network create".into(),
            message: format!(
                "organisation name {org:?} cannot name a Docker network; use 1–50 letters, digits, '-', '_' or '.'"
            ),
        })
    }
}

fn is_not_found(e: &RuntimeError) -> bool {
    matches!(e, RuntimeError::Engine { message, .. } if message.ends_with("(HTTP 404)"))
}

fn is_status(e: &RuntimeError, code: u16) -> bool {
    matches!(e, RuntimeError::Engine { message, .. } if message.ends_with(&format!("(HTTP {code})")))
}

fn state_of(status: Option<ContainerStateStatusEnum>) -> InstanceState {
    match status {
        Some(ContainerStateStatusEnum::RUNNING)
        | Some(ContainerStateStatusEnum::PAUSED)
        | Some(ContainerStateStatusEnum::STOPPING) => InstanceState::Running,
        Some(ContainerStateStatusEnum::RESTARTING) => InstanceState::Restarting,
        Some(ContainerStateStatusEnum::EXITED) => InstanceState::Exited,
        Some(ContainerStateStatusEnum::DEAD) | Some(ContainerStateStatusEnum::REMOVING) => {
            InstanceState::Dead
        }
        Some(ContainerStateStatusEnum::CREATED) | Some(ContainerStateStatusEnum::EMPTY) | None => {
            InstanceState::Created
        }
    }
}

fn to_instance(c: &ContainerInspectResponse) -> Instance {
    let l = c
        .config
        .as_ref()
        .and_then(|cfg| cfg.labels.clone())
        .unwrap_or_default();
    let get = |k: &str| l.get(k).cloned().unwrap_or_default();
    let org = get(labels::ORG);
    let state = state_of(c.state.as_ref().and_then(|s| s.status));
    let exit_code = match state {
        InstanceState::Exited | InstanceState::Dead | InstanceState::Restarting => {
            c.state.as_ref().and_then(|s| s.exit_code)
        }
        _ => None,
    };
    let networks = c
        .network_settings
        .as_ref()
        .and_then(|n| n.networks.as_ref());
    let address = networks
        .and_then(|n| n.get(&network_name(&org)))
        .and_then(|e| e.ip_address.as_deref())
        .filter(|a| !a.is_empty())
        .and_then(|a| a.parse::<IpAddr>().ok());
    Instance {
        id: c.id.clone().unwrap_or_default(),
        name: c
            .name
            .as_deref()
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string(),
        app: get(labels::APP),
        service: get(labels::SERVICE),
        deployment_id: get(labels::DEPLOYMENT),
        org,
        image: c
            .config
            .as_ref()
            .and_then(|cfg| cfg.image.clone())
            .unwrap_or_default(),
        image_id: c.image.clone().unwrap_or_default(),
        state,
        exit_code,
        address,
        port: l.get(labels::PORT).and_then(|p| p.parse().ok()),
        restart_count: c.restart_count.unwrap_or(0),
    }
}

/// Splits `registry:5000/org/app:tag` into (`registry:5000/org/app`, `tag`);
/// digests and untagged references are passed whole.
fn split_reference(image: &str) -> (String, Option<String>) {
    if image.contains('@') {
        return (image.to_string(), None);
    }
    let last_slash = image.rfind('/').map(|i| i + 1).unwrap_or(0);
    match image[last_slash..].rfind(':') {
        Some(i) => (
            image[..last_slash + i].to_string(),
            Some(image[last_slash + i + 1..].to_string()),
        ),
        None => (image.to_string(), Some("latest".to_string())),
    }
}

#[async_trait]
impl Target for DockerTarget {
    async fn ping(&self) -> Result<()> {
        match tokio::time::timeout(Duration::from_secs(5), self.docker.ping()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(RuntimeError::Unreachable {
                endpoint: self.endpoint.clone(),
                reason: e.to_string(),
            }),
            Err(_) => Err(RuntimeError::Unreachable {
                endpoint: self.endpoint.clone(),
                reason: "no answer within 5 s".to_string(),
            }),
        }
    }

    async fn ensure_network(&self, org: &str) -> Result<()> {
        self.ensure_network_id(org).await.map(|_| ())
    }

    async fn start(&self, spec: &InstanceSpec) -> Result<Instance> {
        self.ensure_network_id(&spec.org).await?;
        let network = network_name(&spec.org);
        let existing = match self.inspect_raw(&spec.name).await? {
            Some(c) => Some(c),
            None => {
                let options = CreateContainerOptionsBuilder::new()
                    .name(&spec.name)
                    .build();
                match self
                    .call(
                        "create",
                        self.docker
                            .create_container(Some(options), self.create_body(spec, &network)),
                    )
                    .await
                {
                    Ok(created) => {
                        for w in created.warnings {
                            tracing::warn!(container = %spec.name, warning = %w, "engine warning on create");
                        }
                        None
                    }
                    // Created concurrently by a retry of the same step.
                    Err(e) if is_status(&e, 409) => self.inspect_raw(&spec.name).await?,
                    Err(e) if is_not_found(&e) => {
                        return Err(RuntimeError::ImageMissing {
                            image: spec.image.clone(),
                            reason: "the engine does not have it (call ensure_image first)".into(),
                        });
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        if let Some(c) = &existing {
            let existing_labels = c.config.as_ref().and_then(|cfg| cfg.labels.as_ref());
            let label = |k: &str| existing_labels.and_then(|l| l.get(k)).map(String::as_str);
            if label(labels::MANAGED) == Some("true")
                && label(labels::SCOPE) != Some(self.scope.as_str())
            {
                return Err(RuntimeError::Engine {
                    operation: "start".into(),
                    message: format!(
                        "a container named {} belongs to another Hanzo installation (scope {:?}, this one is {:?}); use distinct instance names or remove it",
                        spec.name,
                        label(labels::SCOPE).unwrap_or(""),
                        self.scope
                    ),
                });
            }
            if label(labels::MANAGED) != Some("true") {
                return Err(RuntimeError::Engine {
                    operation: "start".into(),
                    message: format!(
                        "a container named {} exists but was not created by Hanzo; remove or rename it",
                        spec.name
                    ),
                });
            }
            let inst = to_instance(c);
            if matches!(
                inst.state,
                InstanceState::Running | InstanceState::Restarting
            ) {
                return Ok(inst);
            }
        }
        match self
            .call("start", self.docker.start_container(&spec.name, None))
            .await
        {
            Ok(()) => {}
            Err(e) => {
                // Distinguish "the process could not start" (bad command) from an engine failure.
                if let RuntimeError::Engine { message, .. } = &e
                    && (message.contains("executable file not found")
                        || message.contains("no such file or directory"))
                {
                    return Err(RuntimeError::Exited {
                        name: spec.name.clone(),
                        exit_code: 127,
                        last_logs: message.clone(),
                    });
                }
                return Err(e);
            }
        }
        if spec.run_once {
            return match self.inspect_raw(&spec.name).await? {
                Some(c) => Ok(to_instance(&c)),
                None => Err(RuntimeError::Engine {
                    operation: "start".into(),
                    message: format!(
                        "container {} disappeared right after it was started",
                        spec.name
                    ),
                }),
            };
        }
        self.settle(&spec.name).await
    }

    async fn list(&self, selector: &Selector) -> Result<Vec<Instance>> {
        let mut wanted = vec![
            format!("{}=true", labels::MANAGED),
            format!("{}={}", labels::SCOPE, self.scope),
        ];
        if let Some(org) = &selector.org {
            wanted.push(format!("{}={org}", labels::ORG));
        }
        if let Some(app) = &selector.app {
            wanted.push(format!("{}={app}", labels::APP));
        }
        if let Some(dep) = &selector.deployment_id {
            wanted.push(format!("{}={dep}", labels::DEPLOYMENT));
        }
        let mut filters = HashMap::new();
        filters.insert("label".to_string(), wanted);
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let summaries = self
            .call("ps", self.docker.list_containers(Some(options)))
            .await?;
        let ids: Vec<String> = summaries.into_iter().filter_map(|s| s.id).collect();
        let inspected =
            futures_util::future::join_all(ids.iter().map(|id| self.inspect_raw(id))).await;
        let mut out = Vec::with_capacity(ids.len());
        for c in inspected {
            // A container removed between the listing and the inspection is simply gone.
            if let Some(c) = c? {
                out.push(to_instance(&c));
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn stop(&self, id: &str, grace: Duration) -> Result<()> {
        let secs = grace.as_secs_f64().ceil() as i32;
        let options = StopContainerOptionsBuilder::new().t(secs).build();
        let limit = grace + self.call_timeout;
        match self
            .call_within("stop", limit, self.docker.stop_container(id, Some(options)))
            .await
        {
            Ok(()) => {}
            Err(e) if is_not_found(&e) => return Ok(()),
            Err(e) => return Err(e),
        }
        let options = RemoveContainerOptionsBuilder::new()
            .force(true)
            .v(true)
            .build();
        match self
            .call("rm", self.docker.remove_container(id, Some(options)))
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            // "removal already in progress": someone else is removing it.
            Err(e) if is_status(&e, 409) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn logs(&self, id: &str, lines: usize) -> Result<Vec<String>> {
        let tail = lines.to_string();
        let options = LogsOptionsBuilder::new()
            .stdout(true)
            .stderr(true)
            .tail(&tail)
            .build();
        let collect = async {
            let mut stream = self.docker.logs(id, Some(options));
            let mut text = String::new();
            while let Some(chunk) = stream.next().await {
                text.push_str(&chunk?.to_string());
            }
            Ok::<_, BollardError>(text)
        };
        let text = self.call("logs", collect).await?;
        let mut out: Vec<String> = text.lines().map(str::to_string).collect();
        if out.len() > lines {
            out.drain(..out.len() - lines);
        }
        Ok(out)
    }

    async fn image_id(&self, image: &str) -> Result<Option<String>> {
        match self
            .call("image inspect", self.docker.inspect_image(image))
            .await
        {
            Ok(i) => Ok(i.id),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn ensure_image(&self, image: &str) -> Result<String> {
        if let Some(id) = self.image_id(image).await? {
            return Ok(id);
        }
        let (repo, tag) = split_reference(image);
        let mut builder = CreateImageOptionsBuilder::new().from_image(&repo);
        if let Some(tag) = &tag {
            builder = builder.tag(tag);
        }
        let options = builder.build();
        let pull = async {
            let mut stream = self.docker.create_image(Some(options), None, None);
            while let Some(item) = stream.next().await {
                let info = item?;
                if let Some(err) = info.error_detail.and_then(|d| d.message) {
                    return Err(BollardError::DockerStreamError { error: err });
                }
            }
            Ok(())
        };
        match self.call_within("pull", self.pull_timeout, pull).await {
            Ok(()) => {}
            Err(RuntimeError::Engine { message, .. }) => {
                return Err(RuntimeError::ImageMissing {
                    image: image.to_string(),
                    reason: message,
                });
            }
            Err(e) => return Err(e),
        }
        self.image_id(image)
            .await?
            .ok_or_else(|| RuntimeError::ImageMissing {
                image: image.to_string(),
                reason: "the pull finished but the engine still does not list the image".into(),
            })
    }

    async fn restart(&self, id: &str, grace: Duration) -> Result<()> {
        let secs = grace.as_secs_f64().ceil() as i32;
        let options = RestartContainerOptionsBuilder::new().t(secs).build();
        self.call_within(
            "restart",
            grace + self.call_timeout,
            self.docker.restart_container(id, Some(options)),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_into_repository_and_tag() {
        assert_eq!(
            split_reference("nginx"),
            ("nginx".into(), Some("latest".into()))
        );
        assert_eq!(
            split_reference("127.0.0.1:5000/acme-web:abc123"),
            ("127.0.0.1:5000/acme-web".into(), Some("abc123".into()))
        );
        assert_eq!(
            split_reference("127.0.0.1:5000/acme-web"),
            ("127.0.0.1:5000/acme-web".into(), Some("latest".into()))
        );
        assert_eq!(
            split_reference("r/x@sha256:abcd"),
            ("r/x@sha256:abcd".into(), None)
        );
    }

    #[test]
    fn organisation_names_are_checked() {
        assert!(validate_org("acme").is_ok());
        assert!(validate_org("acme-2_b.c").is_ok());
        assert!(validate_org("").is_err());
        assert!(validate_org("a b").is_err());
        assert!(validate_org("a/b").is_err());
    }
}
