//! The reconciler: makes what runs match what the store wants.
//!
//! Level-triggered, like a Kubernetes controller: each pass reads the desired
//! state (the application's desired deployment and instance count) and the
//! observed state (instances listed from the engine by label, servers loaded in
//! Traefik) and takes the next steps. It keeps no belief between passes, so a
//! pass after a crash simply continues: instances have deterministic names,
//! starting an existing one is a no-op, and the proxy file is rewritten whole.
//!
//! Rolling update (the default strategy): start `max_surge` new instances, wait
//! until each passes its health check (within `startup_timeout`), add them to
//! the proxy, take as many old ones out, wait until Traefik has loaded the
//! change, let in-flight requests drain, stop the old ones; repeat. The proxy
//! never routes to an instance that has not passed its check, and old instances
//! leave the proxy before they stop, so users see no failed request.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use hanzo_core::{
    AppStatus, Application, Deployment, DeploymentSource, DeploymentStatus, EventType,
};
use hanzo_manifest::{Manifest, Protocol, Service, ServiceKind, Strategy};
use hanzo_proxy::{AppRoutes, Route};
use hanzo_runtime::{Instance, InstanceSpec, InstanceState, Selector, health};
use hanzo_store::{AppPatch, DeploymentPatch};
use secrecy::SecretString;
use tracing::{debug, info, warn};
use uuid::Uuid;

use crate::pipeline::settle_app_status;
use crate::state::AppState;

/// How many deployments of an application are kept (spec: "the last 25").
pub const KEEP_DEPLOYMENTS: u32 = 25;
/// How long we wait for Traefik to load a change.
const PROXY_LOAD_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause between two health probes while an instance starts.
const STARTUP_PROBE_EVERY: Duration = Duration::from_millis(200);

/// Runs reconciliation passes for every application: on every change
/// notification and at least every `resync_interval`. One task per application
/// at a time; a change during a pass marks it dirty and it runs again.
pub fn spawn(state: AppState) {
    let active: Arc<Mutex<HashMap<Uuid, Arc<AtomicBool>>>> = Arc::default();
    tokio::spawn(async move {
        loop {
            match state.store.list_apps(None).await {
                Ok(apps) => {
                    for app in apps {
                        kick(&state, &active, app.id);
                    }
                }
                Err(e) => warn!("reconciler cannot list applications: {e}"),
            }
            if let Err(e) = sweep_orphans(&state).await {
                debug!("orphan sweep skipped: {e:#}");
            }
            tokio::select! {
                _ = state.reconcile.notified() => {}
                _ = tokio::time::sleep(state.config.resync_interval) => {}
                _ = state.shutdown.cancelled() => return,
            }
        }
    });
}

fn kick(state: &AppState, active: &Arc<Mutex<HashMap<Uuid, Arc<AtomicBool>>>>, app_id: Uuid) {
    let flag = {
        let Ok(mut map) = active.lock() else { return };
        if let Some(flag) = map.get(&app_id) {
            flag.store(true, Ordering::SeqCst);
            return;
        }
        let flag = Arc::new(AtomicBool::new(true));
        map.insert(app_id, flag.clone());
        flag
    };
    let state = state.clone();
    let active = active.clone();
    tokio::spawn(async move {
        loop {
            flag.store(false, Ordering::SeqCst);
            if let Err(e) = reconcile_app(&state, app_id).await {
                warn!(app = %app_id, "reconcile pass failed: {e:#}");
            }
            let Ok(mut map) = active.lock() else { return };
            if !flag.load(Ordering::SeqCst) || state.shutdown.is_cancelled() {
                map.remove(&app_id);
                return;
            }
        }
    });
}

/// Stops managed instances whose application no longer exists.
async fn sweep_orphans(state: &AppState) -> Result<()> {
    let apps = state.store.list_apps(None).await?;
    let known: HashSet<(String, String)> = apps.into_iter().map(|a| (a.org, a.name)).collect();
    for inst in state.target.list(&Selector::default()).await? {
        if !known.contains(&(inst.org.clone(), inst.app.clone())) {
            info!(instance = %inst.name, "stopping an instance of a deleted application");
            state.target.stop(&inst.id, state.config.stop_grace).await?;
            let _ = state.proxy.remove(&proxy_key(&inst.org, &inst.app));
        }
    }
    Ok(())
}

pub fn proxy_key(org: &str, app: &str) -> String {
    format!("{org}-{app}")
}

/// One pass for one application.
pub async fn reconcile_app(state: &AppState, app_id: Uuid) -> Result<()> {
    let app = match state.store.get_app_by_id(app_id).await {
        Ok(a) => a,
        Err(hanzo_store::StoreError::NotFound { .. }) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let mut observed = state
        .target
        .list(&Selector {
            org: Some(app.org.clone()),
            app: Some(app.name.clone()),
            deployment_id: None,
        })
        .await?;
    // Cron runs belong to the scheduler (crate::cron), not to the rollout.
    observed.retain(|i| !crate::cron::is_cron_instance(i));
    let Some(desired_id) = app.desired_deployment_id else {
        // Nothing wanted: nothing runs, nothing is routed.
        take_down(state, &app, &observed).await?;
        return Ok(());
    };
    let d = state.store.get_deployment(desired_id).await?;
    let manifest = manifest_of(&d)?;
    match d.status {
        DeploymentStatus::Deploying => rollout(state, &app, &d, &manifest, observed).await,
        DeploymentStatus::Running => steady(state, &app, &d, &manifest, observed).await,
        other => {
            warn!(app = %app.name, deployment = %d.id, "desired deployment is {other}; reverting to the current one");
            state
                .store
                .update_app(
                    app.id,
                    AppPatch {
                        desired_deployment_id: Some(app.current_deployment_id),
                        ..Default::default()
                    },
                    None,
                )
                .await?;
            state.reconcile.notify_one();
            Ok(())
        }
    }
}

pub fn manifest_of(d: &Deployment) -> Result<Manifest> {
    let v = d
        .manifest
        .clone()
        .ok_or_else(|| anyhow!("deployment {} has no manifest recorded", d.id))?;
    serde_json::from_value(v).context("the recorded manifest cannot be read")
}

async fn take_down(state: &AppState, app: &Application, observed: &[Instance]) -> Result<()> {
    let key = proxy_key(&app.org, &app.name);
    state.proxy.remove(&key)?;
    if !observed.is_empty() {
        state
            .proxy
            .wait_loaded(&key, &[], PROXY_LOAD_TIMEOUT)
            .await?;
        drain(state).await;
        for inst in observed {
            state.target.stop(&inst.id, state.config.stop_grace).await?;
        }
    }
    Ok(())
}

async fn drain(state: &AppState) {
    tokio::time::sleep(state.config.drain).await;
}

/// Routes of an application: its manifest domains, or the default host.
pub fn routes_of(state: &AppState, app: &Application, manifest: &Manifest) -> Vec<Route> {
    let mut routes: Vec<Route> = Vec::new();
    if let Some(web) = manifest.web_service() {
        for d in &web.domains {
            routes.push(Route {
                host: d.host.clone(),
                path_prefix: d.path.clone(),
            });
        }
    }
    for domain in &app.domains {
        let (host, path) = match domain.split_once('/') {
            Some((h, p)) => (h.to_string(), Some(format!("/{p}"))),
            None => (domain.clone(), None),
        };
        if !routes
            .iter()
            .any(|r| r.host == host && r.path_prefix == path)
        {
            routes.push(Route {
                host,
                path_prefix: path,
            });
        }
    }
    // The platform's own host always routes too, so adding a custom domain
    // never takes an application off the URL it had.
    let default_host = state.config.default_host(&app.org, &app.name);
    if !routes.iter().any(|r| r.host == default_host) {
        routes.push(Route {
            host: default_host,
            path_prefix: None,
        });
    }
    routes
}

/// Public URL of an application.
pub fn url_of(state: &AppState, app: &Application, manifest: &Manifest) -> String {
    let routes = routes_of(state, app, manifest);
    let r = &routes[0];
    state.config.public_url(&r.host, r.path_prefix.as_deref())
}

fn server_url(inst: &Instance) -> Option<String> {
    Some(format!("http://{}:{}", inst.address?, inst.port?))
}

/// Points the proxy at exactly these instances and waits until Traefik has them.
async fn route_to(
    state: &AppState,
    app: &Application,
    manifest: &Manifest,
    instances: &[&Instance],
) -> Result<()> {
    let key = proxy_key(&app.org, &app.name);
    let servers: Vec<String> = instances.iter().filter_map(|i| server_url(i)).collect();
    if servers.is_empty() {
        state.proxy.remove(&key)?;
    } else {
        state.proxy.apply(&AppRoutes {
            key: key.clone(),
            routes: routes_of(state, app, manifest),
            servers: servers.clone(),
            entrypoints: vec!["web".into()],
            tls: false,
        })?;
    }
    let t0 = Instant::now();
    state
        .proxy
        .wait_loaded(&key, &servers, PROXY_LOAD_TIMEOUT)
        .await
        .context("Traefik did not load the new routes")?;
    debug!(key = %key, servers = servers.len(), loaded_ms = t0.elapsed().as_millis() as u64, "proxy routes loaded");
    Ok(())
}

/// A long-running service of a manifest with its stable id: `web`, `worker`,
/// then `web2`, `worker2`… for further services of the same kind.
#[derive(Debug, Clone)]
pub struct Svc<'a> {
    pub id: String,
    pub spec: &'a Service,
}

impl Svc<'_> {
    pub fn routed(&self) -> bool {
        self.spec.kind == ServiceKind::Web && self.spec.port.is_some()
    }
}

/// Services of a manifest with their ids, in manifest order.
pub fn services_of(manifest: &Manifest) -> Vec<Svc<'_>> {
    let mut seen: HashMap<&'static str, usize> = HashMap::new();
    manifest
        .services
        .iter()
        .map(|spec| {
            let base = match spec.kind {
                ServiceKind::Web => "web",
                ServiceKind::Worker => "worker",
                ServiceKind::Cron => "cron",
            };
            let n = seen.entry(base).or_default();
            *n += 1;
            let id = if *n == 1 {
                base.to_string()
            } else {
                format!("{base}{n}")
            };
            Svc { id, spec }
        })
        .collect()
}

/// Services that run instances all the time (web and workers; cron runs on its schedule).
fn long_running(manifest: &Manifest) -> Vec<Svc<'_>> {
    services_of(manifest)
        .into_iter()
        .filter(|s| s.spec.kind != ServiceKind::Cron)
        .collect()
}

fn instance_name(app: &Application, d: &Deployment, svc: &str, index: u32) -> String {
    format!("{}-{}-{svc}-{}-{index}", app.org, app.name, d.number)
}

fn index_of(inst: &Instance) -> Option<u32> {
    inst.name.rsplit('-').next().and_then(|n| n.parse().ok())
}

/// `/bin/sh -c COMMAND` for a command written as one string in hanzo.yaml.
pub fn shell(command: &str) -> Vec<String> {
    vec!["/bin/sh".to_string(), "-c".to_string(), command.to_string()]
}

fn spec_for(
    app: &Application,
    d: &Deployment,
    manifest: &Manifest,
    svc: &Svc<'_>,
    env: &[(String, SecretString)],
    index: u32,
) -> InstanceSpec {
    InstanceSpec {
        name: instance_name(app, d, &svc.id, index),
        org: app.org.clone(),
        app: app.name.clone(),
        service: svc.id.clone(),
        deployment_id: d.id.to_string(),
        image: d.image_tag.clone(),
        env: env.to_vec(),
        port: svc.spec.port,
        command: svc.spec.command.as_deref().map(shell),
        memory_bytes: i64::try_from(manifest.deploy.memory_bytes).ok(),
        nano_cpus: Some(i64::from(manifest.deploy.cpu_millis) * 1_000_000),
        extra_labels: Default::default(),
        run_once: false,
    }
}

/// Environment of an instance: the manifest's plain values, overridden by the
/// values set on the application (`hanzo env set`), plus `PORT`.
pub async fn env_for(
    state: &AppState,
    app: &Application,
    manifest: &Manifest,
) -> Result<Vec<(String, SecretString)>> {
    let mut env: Vec<(String, String)> = Vec::new();
    if let Some(port) = manifest.web_service().and_then(|w| w.port) {
        env.push(("PORT".into(), port.to_string()));
    }
    for e in &manifest.env {
        if let Some(v) = &e.value {
            env.retain(|(k, _)| k != &e.name);
            env.push((e.name.clone(), v.clone()));
        }
    }
    for v in state.store.list_env(app.id).await? {
        env.retain(|(k, _)| k != &v.name);
        env.push((v.name, v.value));
    }
    Ok(env
        .into_iter()
        .map(|(k, v)| (k, SecretString::from(v)))
        .collect())
}

/// Waits until the instance passes its health check, within the deadline.
/// Web services: HTTP (or TCP for `protocol: tcp`) from the host; workers: the
/// `exec` command inside the instance, or simply staying up for a moment.
async fn gate(
    state: &AppState,
    inst: &Instance,
    svc: &Svc<'_>,
    deadline: Instant,
    startup: Duration,
) -> Result<(), String> {
    let started = Instant::now();
    loop {
        // A crashed instance will not become healthy: stop waiting.
        match state
            .target
            .list(&Selector {
                deployment_id: Some(inst.deployment_id.clone()),
                ..Default::default()
            })
            .await
        {
            Ok(now) => {
                if let Some(cur) = now.iter().find(|i| i.id == inst.id)
                    && matches!(cur.state, InstanceState::Exited | InstanceState::Dead)
                {
                    return Err(format!(
                        "the instance exited with code {}",
                        cur.exit_code.unwrap_or(-1)
                    ));
                }
            }
            Err(e) => debug!("cannot inspect instance {}: {e}", inst.name),
        }
        let last = match check_once(state, inst, svc, started).await {
            Ok(()) => return Ok(()),
            Err(reason) => reason,
        };
        if Instant::now() >= deadline {
            return Err(format!(
                "it did not pass its health check within {}s (last result: {last})",
                startup.as_secs()
            ));
        }
        tokio::time::sleep(STARTUP_PROBE_EVERY).await;
    }
}

/// How long a worker without an `exec` check must stay up to count as started.
const WORKER_SETTLE: Duration = Duration::from_secs(1);

/// One health check of an instance.
pub async fn check_once(
    state: &AppState,
    inst: &Instance,
    svc: &Svc<'_>,
    since: Instant,
) -> Result<(), String> {
    let hc = &svc.spec.healthcheck;
    let timeout = hc.timeout.min(Duration::from_secs(30));
    if let Some(cmd) = &hc.exec {
        let target = state.engine.target().map_err(|e| e.to_string())?;
        return health::exec_check(&target, &inst.id, cmd, timeout).await;
    }
    match (inst.address, inst.port.or(svc.spec.port)) {
        (Some(addr), Some(port)) => match (&hc.path, svc.spec.protocol) {
            (_, Protocol::Tcp) | (None, _) => health::tcp_check(addr, port, timeout).await,
            (Some(path), _) => health::http_check(addr, port, path, timeout)
                .await
                .map(|_| ()),
        },
        (None, Some(_)) => {
            Err("the instance has no address on its organisation's network yet".into())
        }
        _ => {
            if since.elapsed() >= WORKER_SETTLE {
                Ok(())
            } else {
                Err("the instance has not been up long enough yet".into())
            }
        }
    }
}

/// Starts the instance with that index and waits until it is healthy.
#[allow(clippy::too_many_arguments)]
async fn start_healthy(
    state: &AppState,
    app: &Application,
    d: &Deployment,
    manifest: &Manifest,
    svc: &Svc<'_>,
    env: &[(String, SecretString)],
    index: u32,
) -> Result<Instance, Failure> {
    let spec = spec_for(app, d, manifest, svc, env, index);
    let startup = manifest.deploy.startup_timeout;
    let t0 = Instant::now();
    let deadline = t0 + startup;
    let inst = match state.target.start(&spec).await {
        Ok(i) => i,
        Err(e) => {
            return Err(Failure {
                reason: format!("instance {} could not start: {e}", spec.name),
                logs: vec![],
            });
        }
    };
    let started = t0.elapsed();
    match gate(state, &inst, svc, deadline, startup).await {
        Ok(()) => {
            debug!(
                instance = %inst.name,
                started_ms = started.as_millis() as u64,
                healthy_ms = t0.elapsed().as_millis() as u64,
                "instance is healthy"
            );
            let _ = state
                .store
                .add_event(
                    d.id,
                    EventType::HealthCheckPassed,
                    &format!("{} is healthy", inst.name),
                )
                .await;
            Ok(inst)
        }
        Err(reason) => {
            let logs = state.target.logs(&inst.id, 20).await.unwrap_or_default();
            Err(Failure {
                reason: format!("instance {} failed: {reason}", inst.name),
                logs,
            })
        }
    }
}

struct Failure {
    reason: String,
    logs: Vec<String>,
}

impl Failure {
    fn message(&self) -> String {
        if self.logs.is_empty() {
            format!(
                "{} — fix the application or its healthcheck in hanzo.yaml and deploy again",
                self.reason
            )
        } else {
            format!(
                "{} — fix the application or its healthcheck in hanzo.yaml and deploy again. Last log lines:\n{}",
                self.reason,
                self.logs.join("\n")
            )
        }
    }
}

async fn stop_all(state: &AppState, instances: &[Instance]) -> Result<()> {
    let stops = instances
        .iter()
        .map(|i| state.target.stop(&i.id, state.config.stop_grace));
    for r in futures_util::future::join_all(stops).await {
        r?;
    }
    Ok(())
}

/// Rolls one service out: new instances in batches of `max_surge`, each
/// health-gated; for the routed service, new ones join the proxy before old
/// ones leave it. Returns the ready instances and the old ones still to stop
/// (already out of the proxy).
#[allow(clippy::too_many_arguments)]
async fn rollout_service(
    state: &AppState,
    app: &Application,
    d: &Deployment,
    manifest: &Manifest,
    svc: &Svc<'_>,
    env: &[(String, SecretString)],
    mut old: Vec<Instance>,
    mine: &[Instance],
) -> Result<Result<(Vec<Instance>, Vec<Instance>), Failure>> {
    let want = app.instances;
    let surge = manifest.deploy.max_surge.max(1);
    if manifest.deploy.strategy == Strategy::Recreate && !old.is_empty() {
        if svc.routed() {
            route_to(state, app, manifest, &[]).await?;
            drain(state).await;
        }
        stop_all(state, &old).await?;
        old.clear();
    }
    let mut ready: Vec<Instance> = Vec::new();
    let mut index = 0;
    while index < want {
        let batch: Vec<u32> = (index..want.min(index + surge)).collect();
        index += batch.len() as u32;
        let started = futures_util::future::join_all(
            batch
                .iter()
                .map(|i| start_healthy(state, app, d, manifest, svc, env, *i)),
        )
        .await;
        let mut failure = None;
        for r in started {
            match r {
                Ok(inst) => ready.push(inst),
                Err(f) => failure = failure.or(Some(f)),
            }
        }
        if let Some(f) = failure {
            return Ok(Err(f));
        }
        // New ones in, as many old ones out.
        let retire: Vec<Instance> = old.drain(..batch.len().min(old.len())).collect();
        if svc.routed() {
            let serving: Vec<&Instance> = ready.iter().chain(old.iter()).collect();
            route_to(state, app, manifest, &serving).await?;
            if !retire.is_empty() && index < want {
                drain(state).await;
                stop_all(state, &retire).await?;
            } else {
                old.extend(retire);
            }
        } else if index < want {
            stop_all(state, &retire).await?;
        } else {
            old.extend(retire);
        }
    }
    if svc.routed() {
        let serving: Vec<&Instance> = ready.iter().collect();
        route_to(state, app, manifest, &serving).await?;
    }
    // Extra instances of this deployment from an earlier, larger pass.
    old.extend(
        mine.iter()
            .filter(|i| !ready.iter().any(|r| r.id == i.id))
            .cloned(),
    );
    Ok(Ok((ready, old)))
}

async fn rollout(
    state: &AppState,
    app: &Application,
    d: &Deployment,
    manifest: &Manifest,
    observed: Vec<Instance>,
) -> Result<()> {
    let resumed = state
        .store
        .list_events(d.id)
        .await?
        .iter()
        .any(|e| e.kind == EventType::DeployStarted);
    info!(app = %app.name, deployment = d.number, image = %d.image_tag, resumed, "rolling out");
    let msg = if resumed {
        format!("resuming the rollout of {} after a restart", d.image_tag)
    } else {
        format!(
            "rolling out {} to {} instance(s)",
            d.image_tag, app.instances
        )
    };
    state
        .store
        .add_event(d.id, EventType::DeployStarted, &msg)
        .await?;
    state.target.ensure_network(&app.org).await?;
    if let Err(e) = state.target.ensure_image(&d.image_tag).await {
        return fail(
            state,
            app,
            d,
            manifest,
            Failure {
                reason: e.to_string(),
                logs: vec![],
            },
        )
        .await;
    }
    let env = env_for(state, app, manifest).await?;
    let me = d.id.to_string();

    // Instances that are not running any more serve nobody: clear them first.
    let dead: Vec<Instance> = observed
        .iter()
        .filter(|i| i.state != InstanceState::Running)
        .cloned()
        .collect();
    stop_all(state, &dead).await?;
    // Instances a background task is draining are out of the proxy already.
    let live: Vec<Instance> = observed
        .into_iter()
        .filter(|i| i.state == InstanceState::Running)
        .filter(|i| !state.health.is_stopping(&i.id))
        .collect();

    let mut ready_all: Vec<Instance> = Vec::new();
    let mut to_stop: Vec<Instance> = Vec::new();
    let services = long_running(manifest);
    for svc in &services {
        let old: Vec<Instance> = live
            .iter()
            .filter(|i| i.deployment_id != me && i.service == svc.id)
            .cloned()
            .collect();
        let mine: Vec<Instance> = live
            .iter()
            .filter(|i| i.deployment_id == me && i.service == svc.id)
            .cloned()
            .collect();
        match rollout_service(state, app, d, manifest, svc, &env, old, &mine).await? {
            Ok((ready, rest)) => {
                ready_all.extend(ready);
                to_stop.extend(rest);
            }
            Err(f) => return fail(state, app, d, manifest, f).await,
        }
    }
    // Services the new manifest no longer has.
    to_stop.extend(
        live.iter()
            .filter(|i| !services.iter().any(|s| s.id == i.service))
            .cloned(),
    );
    if !services.iter().any(|s| s.routed()) {
        route_to(state, app, manifest, &[]).await?;
    }
    verify_image(state, d, &ready_all).await?;
    promote(state, app, d, manifest).await?;
    // The old instances are out of the proxy: let in-flight requests finish,
    // then stop them — in the background, so that the next change of this app
    // (a rollback right after a deploy) does not wait for the drain. A crash
    // meanwhile is harmless: the steady pass retires what is left.
    if !to_stop.is_empty() {
        let state = state.clone();
        let ids: Vec<String> = to_stop.iter().map(|i| i.id.clone()).collect();
        state.health.mark_stopping(ids.clone());
        tokio::spawn(async move {
            drain(&state).await;
            let result = stop_all(&state, &to_stop).await;
            state.health.done_stopping(&ids);
            if let Err(e) = result {
                warn!("cannot stop a replaced instance (the next pass retries): {e:#}");
                state.reconcile.notify_one();
            }
        });
    }
    Ok(())
}

/// The running instances must run the image the deployment names.
async fn verify_image(state: &AppState, d: &Deployment, ready: &[Instance]) -> Result<()> {
    let Some(want) = state.target.image_id(&d.image_tag).await? else {
        return Err(anyhow!(
            "image {} disappeared from the engine during the rollout",
            d.image_tag
        ));
    };
    if let Some(bad) = ready.iter().find(|i| i.image_id != want) {
        return Err(anyhow!(
            "instance {} runs {} instead of {} ({want})",
            bad.name,
            bad.image_id,
            d.image_tag
        ));
    }
    Ok(())
}

/// Marks the deployment running, then settles the books (see [`settle_promotion`]).
async fn promote(
    state: &AppState,
    app: &Application,
    d: &Deployment,
    manifest: &Manifest,
) -> Result<()> {
    let url = url_of(state, app, manifest);
    state
        .store
        .transition_deployment(
            d.id,
            DeploymentStatus::Deploying,
            DeploymentPatch {
                status: Some(DeploymentStatus::Running),
                completed_at: Some(chrono::Utc::now()),
                url: Some(url.clone()),
                ..Default::default()
            },
        )
        .await?;
    let (kind, msg) = match d.source {
        DeploymentSource::Rollback { .. } => (
            EventType::RollbackCompleted,
            format!("rolled back to {}; serving at {url}", d.image_tag),
        ),
        _ => (
            EventType::DeployCompleted,
            format!("{} is serving at {url}", d.image_tag),
        ),
    };
    state.store.add_event(d.id, kind, &msg).await?;
    settle_promotion(state, app, d).await?;
    info!(app = %app.name, deployment = d.number, "deployment is serving");
    Ok(())
}

/// Idempotent bookkeeping after a deployment started serving: it becomes the
/// current one, every other running deployment of the app is superseded (or
/// rolled back, when this is a rollback), old history is pruned. Run again by
/// the steady pass, so a crash half-way through is completed.
async fn settle_promotion(state: &AppState, app: &Application, d: &Deployment) -> Result<()> {
    let others = state
        .store
        .list_deployments(app.id, KEEP_DEPLOYMENTS * 2)
        .await?;
    for other in others
        .iter()
        .filter(|o| o.id != d.id && o.status == DeploymentStatus::Running)
    {
        let status = match d.source {
            DeploymentSource::Rollback { .. } if Some(other.id) == app.current_deployment_id => {
                DeploymentStatus::RolledBack
            }
            _ => DeploymentStatus::Superseded,
        };
        let _ = state
            .store
            .transition_deployment(
                other.id,
                DeploymentStatus::Running,
                DeploymentPatch {
                    status: Some(status),
                    ..Default::default()
                },
            )
            .await;
    }
    if app.current_deployment_id != Some(d.id) {
        state
            .store
            .update_app(
                app.id,
                AppPatch {
                    current_deployment_id: Some(Some(d.id)),
                    ..Default::default()
                },
                None,
            )
            .await?;
    }
    settle_app_status(state, app.id).await?;
    let pruned = state
        .store
        .prune_deployments(app.id, KEEP_DEPLOYMENTS)
        .await?;
    if !pruned.is_empty() {
        prune_images(state, app, &pruned).await;
    }
    Ok(())
}

/// Removes the images of pruned deployments that no kept deployment uses.
async fn prune_images(state: &AppState, app: &Application, pruned: &[Deployment]) {
    let kept: HashSet<String> = match state
        .store
        .list_deployments(app.id, KEEP_DEPLOYMENTS * 2)
        .await
    {
        Ok(list) => list.into_iter().map(|d| d.image_tag).collect(),
        Err(_) => return,
    };
    let Ok(builder) = state.engine.builder() else {
        return;
    };
    for d in pruned {
        if d.image_tag.is_empty()
            || kept.contains(&d.image_tag)
            || matches!(d.source, DeploymentSource::Image { .. })
        {
            continue;
        }
        if let Err(e) = builder.remove_image(&d.image_tag).await {
            debug!(image = %d.image_tag, "image of a pruned deployment not removed: {e}");
        }
    }
    debug!(app = %app.name, count = pruned.len(), "pruned old deployments");
}

async fn fail(
    state: &AppState,
    app: &Application,
    d: &Deployment,
    manifest: &Manifest,
    f: Failure,
) -> Result<()> {
    let message = f.message();
    warn!(app = %app.name, deployment = d.number, "rollout failed: {}", f.reason);
    state
        .store
        .add_event(d.id, EventType::HealthCheckFailed, &f.reason)
        .await?;
    // Stop what this deployment started, and make sure the old instances route.
    let observed = state
        .target
        .list(&Selector {
            org: Some(app.org.clone()),
            app: Some(app.name.clone()),
            deployment_id: None,
        })
        .await?;
    let (mine, old): (Vec<_>, Vec<_>) = observed
        .into_iter()
        .partition(|i| i.deployment_id == d.id.to_string());
    let current = match app.current_deployment_id {
        Some(cur) => state.store.get_deployment(cur).await.ok(),
        None => None,
    };
    let cur_manifest = current.as_ref().and_then(|c| manifest_of(c).ok());
    let serving: Vec<&Instance> = old
        .iter()
        .filter(|i| {
            i.state == InstanceState::Running
                && i.service == "web"
                && !state.health.is_stopping(&i.id)
        })
        .collect();
    match &cur_manifest {
        Some(m) => route_to(state, app, m, &serving).await?,
        None => route_to(state, app, manifest, &[]).await?,
    }
    stop_all(state, &mine).await?;
    state
        .store
        .add_event(d.id, EventType::DeployFailed, &message)
        .await?;
    state
        .store
        .transition_deployment(
            d.id,
            DeploymentStatus::Deploying,
            DeploymentPatch {
                status: Some(DeploymentStatus::Failed),
                error: Some(message),
                completed_at: Some(chrono::Utc::now()),
                ..Default::default()
            },
        )
        .await?;
    // Back to what served before, with its instance count.
    let mut patch = AppPatch {
        desired_deployment_id: Some(app.current_deployment_id),
        ..Default::default()
    };
    if let Some(m) = &cur_manifest {
        let running_web = serving.len() as u32;
        patch.instances = Some(if app.status == AppStatus::Stopped {
            0
        } else {
            running_web.max(m.deploy.instances.min(app.instances))
        });
    }
    state.store.update_app(app.id, patch, None).await?;
    settle_app_status(state, app.id).await?;
    state.reconcile.notify_one();
    Ok(())
}

/// Keeps a promoted deployment at its instance count, routed, with nothing else running.
async fn steady(
    state: &AppState,
    app: &Application,
    d: &Deployment,
    manifest: &Manifest,
    observed: Vec<Instance>,
) -> Result<()> {
    if app.current_deployment_id != Some(d.id) {
        // A crash between "running" and the bookkeeping: finish it now.
        settle_promotion(state, app, d).await?;
    }
    let want = app.instances;
    let me = d.id.to_string();
    let services = long_running(manifest);
    let mut keep: Vec<Instance> = Vec::new();
    let mut retire: Vec<Instance> = Vec::new();
    for i in observed {
        let wanted_service = services.iter().any(|s| s.id == i.service);
        match index_of(&i) {
            Some(ix)
                if i.deployment_id == me
                    && wanted_service
                    && ix < want
                    && i.state == InstanceState::Running =>
            {
                keep.push(i)
            }
            _ => retire.push(i),
        }
    }
    let mut env: Option<Vec<(String, SecretString)>> = None;
    for svc in &services {
        let have: HashSet<u32> = keep
            .iter()
            .filter(|i| i.service == svc.id)
            .filter_map(index_of)
            .collect();
        let missing: Vec<u32> = (0..want).filter(|ix| !have.contains(ix)).collect();
        if missing.is_empty() {
            continue;
        }
        // Instances that died or were scaled up: replace them, unless they keep crashing.
        let dead: Vec<Instance> = retire
            .iter()
            .filter(|i| {
                i.deployment_id == me && i.service == svc.id && i.state != InstanceState::Running
            })
            .cloned()
            .collect();
        stop_all(state, &dead).await?;
        retire.retain(|i| !dead.iter().any(|x| x.id == i.id));
        state.target.ensure_network(&app.org).await?;
        if env.is_none() {
            env = Some(env_for(state, app, manifest).await?);
        }
        let env = env.as_deref().unwrap_or_default();
        for ix in missing {
            let name = instance_name(app, d, &svc.id, ix);
            if !state.health.may_replace(&name) {
                continue;
            }
            if !dead.iter().any(|x| x.name == name) {
                state.health.forget_replacements(&name);
            } else {
                state.health.note_replacement(&name);
            }
            match start_healthy(state, app, d, manifest, svc, env, ix).await {
                Ok(inst) => keep.push(inst),
                Err(f) => warn!(app = %app.name, "could not restore an instance: {}", f.message()),
            }
        }
    }
    let web: Vec<&Instance> = keep
        .iter()
        .filter(|i| services.iter().any(|s| s.id == i.service && s.routed()))
        .filter(|i| !state.health.is_unhealthy(&i.name))
        .collect();
    route_to(state, app, manifest, &web).await?;
    let retire: Vec<Instance> = retire
        .into_iter()
        .filter(|i| !keep.iter().any(|k| k.id == i.id))
        .filter(|i| !state.health.is_stopping(&i.id))
        .collect();
    if !retire.is_empty() {
        drain(state).await;
        stop_all(state, &retire).await?;
    }
    let status = if want == 0 {
        AppStatus::Stopped
    } else {
        AppStatus::Running
    };
    if app.status != status && app.status != AppStatus::Deploying {
        state
            .store
            .update_app(
                app.id,
                AppPatch {
                    status: Some(status),
                    ..Default::default()
                },
                None,
            )
            .await?;
    }
    Ok(())
}
