//! The build half of a deployment: clone → manifest → image → registry.
//!
//! Build workers claim queued git deployments from the store (at most one per
//! application at a time, `build_concurrency` in all), run them, and hand the
//! result to the reconciler by making the deployment the application's desired
//! one. A crash mid-build leaves the deployment `building`/`pushing`; at start-up
//! [`recover`] puts those back in the queue, since every step is repeatable.
//!
//! Secrets: every line a build stores or streams, every event and every error is
//! scrubbed of the secret values the platform knows at build time (the registry
//! password; build arguments whose names say they are secrets) and of well-known
//! secret formats. After the build, the image history is checked for those same
//! values: an image that keeps one in an `ENV`, `ARG` or `RUN` is rejected and
//! never pushed.
//!
//! Cache: the engine's layer cache is content-addressed (parent layer +
//! instruction + file checksums), so one application never reuses another's
//! result unless the inputs are identical. Each application's `:latest` image is
//! its cache anchor; when the engine lost it (a new machine, a pruned engine) it
//! is pulled back from the registry and used as `--cache-from`.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use hanzo_build::{BuildOptions, BuildSettings, RegistryAuth, scrub_secrets};
use hanzo_core::{Application, Deployment, DeploymentSource, DeploymentStatus, EventType};
use hanzo_manifest::Manifest;
use hanzo_store::{AppPatch, DeploymentPatch};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::state::AppState;

/// Build settings from the server configuration.
pub fn build_settings(config: &crate::config::Config) -> BuildSettings {
    let mut s = BuildSettings::default();
    s.apply_env(
        config
            .base_images
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str())),
    );
    s.ca_bundle = config.ca_bundle.clone();
    s.memory_bytes = config.build_memory_bytes;
    s.nano_cpus = config.build_nano_cpus;
    s.timeout = config.build_timeout;
    s
}

/// Build logs are kept this long (spec: 30 days).
pub const LOG_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);
/// How often old build logs are pruned.
pub const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(3600);
/// Longest a push (or a pull of the cache image) may take.
pub const REGISTRY_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// Longest a clone may take.
pub const CLONE_TIMEOUT: Duration = Duration::from_secs(300);

/// Puts builds interrupted by a crash back in the queue, and removes the work
/// directories they left behind (no build runs before the workers start).
pub async fn recover(state: &AppState) -> Result<()> {
    if let Ok(mut dir) = tokio::fs::read_dir(state.config.builds_dir()).await {
        while let Ok(Some(entry)) = dir.next_entry().await {
            let _ = tokio::fs::remove_dir_all(entry.path()).await;
        }
    }
    let stuck = state
        .store
        .deployments_in(&[DeploymentStatus::Building, DeploymentStatus::Pushing])
        .await?;
    for d in stuck {
        warn!(deployment = %d.id, "build interrupted by a restart; queueing it again");
        state
            .store
            .update_deployment(
                d.id,
                DeploymentPatch {
                    status: Some(DeploymentStatus::Queued),
                    ..Default::default()
                },
            )
            .await?;
    }
    Ok(())
}

/// Prunes build logs older than [`LOG_RETENTION`] now and every
/// [`MAINTENANCE_INTERVAL`] until shutdown. [`spawn_workers`] starts it.
pub fn spawn_maintenance(state: AppState) {
    tokio::spawn(async move {
        loop {
            match prune_old_logs(state.store.as_ref(), chrono::Utc::now()).await {
                Ok(0) => {}
                Ok(n) => info!("pruned {n} build log chunks older than 30 days"),
                Err(e) => warn!("cannot prune old build logs: {e}"),
            }
            tokio::select! {
                _ = tokio::time::sleep(MAINTENANCE_INTERVAL) => {}
                _ = state.shutdown.cancelled() => return,
            }
        }
    });
}

/// Deletes the build logs older than [`LOG_RETENTION`] at `now`; returns how many chunks.
pub async fn prune_old_logs(
    store: &dyn hanzo_store::Store,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<u64> {
    let retention = chrono::Duration::from_std(LOG_RETENTION).context("log retention")?;
    Ok(store.prune_logs(now - retention).await?)
}

/// Runs `n` build workers until shutdown, and the log-retention task.
pub fn spawn_workers(state: AppState, n: usize) {
    spawn_maintenance(state.clone());
    for i in 0..n {
        let state = state.clone();
        tokio::spawn(async move {
            loop {
                if state.shutdown.is_cancelled() {
                    return;
                }
                match state.store.claim_next_build().await {
                    Ok(Some(d)) => run_build(&state, d).await,
                    Ok(None) => {
                        tokio::select! {
                            _ = state.builds.notified() => {}
                            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                            _ = state.shutdown.cancelled() => return,
                        }
                    }
                    Err(e) => {
                        warn!(worker = i, "cannot claim a build: {e}");
                        tokio::time::sleep(Duration::from_secs(2)).await;
                    }
                }
            }
        });
    }
}

/// Runs one claimed build to its end: the deployment leaves `building` as
/// `deploying` (handed to the reconciler), `failed` or `cancelled`, never stays
/// behind (unless the server shuts down: then [`recover`] requeues it).
async fn run_build(state: &AppState, d: Deployment) {
    let cancel = state.shutdown.child_token();
    if let Ok(mut m) = state.running_builds.lock() {
        m.insert(d.id, cancel.clone());
    }
    let mut secrets = Secrets::of_platform(state);
    let result = build(state, &d, cancel.clone(), &mut secrets).await;
    if let Ok(mut m) = state.running_builds.lock() {
        m.remove(&d.id);
    }
    if state.shutdown.is_cancelled() {
        // Interrupted by shutdown: left in building, requeued by `recover` at next start.
        return;
    }
    if let Err(e) = result {
        let cancelled = cancel.is_cancelled();
        let msg = if cancelled {
            "the build was cancelled".to_string()
        } else {
            secrets.scrub(&format!("{e:#}"))
        };
        warn!(deployment = %d.id, "build failed: {msg}");
        let status = if cancelled {
            DeploymentStatus::Cancelled
        } else {
            DeploymentStatus::Failed
        };
        let _ = state
            .store
            .add_event(d.id, EventType::BuildFailed, &msg)
            .await;
        let _ = state
            .store
            .append_log(d.id, &format!("error: {msg}\n"))
            .await;
        let _ = state
            .store
            .update_deployment(
                d.id,
                DeploymentPatch {
                    status: Some(status),
                    error: Some(msg),
                    completed_at: Some(chrono::Utc::now()),
                    ..Default::default()
                },
            )
            .await;
        let _ = settle_app_status(state, d.app_id).await;
    }
}

/// The secret values a build knows, by name: scrubbed from everything the build
/// stores or streams, and looked for in the image history.
struct Secrets {
    named: Vec<(String, SecretString)>,
}

impl Secrets {
    /// What the platform itself knows: the registry password. (Application
    /// secrets from KMS join here once KMS is configured.)
    fn of_platform(state: &AppState) -> Secrets {
        let mut named = Vec::new();
        if let Some(pw) = state
            .config
            .registry
            .as_ref()
            .and_then(|r| r.password.clone())
            .filter(|p| !p.expose_secret().is_empty())
        {
            named.push(("HANZO_REGISTRY_PASSWORD".to_string(), pw));
        }
        Secrets { named }
    }

    fn add(&mut self, more: Vec<(String, SecretString)>) {
        self.named.extend(more);
    }

    fn values(&self) -> Vec<SecretString> {
        self.named.iter().map(|(_, v)| v.clone()).collect()
    }

    /// `text` without known values nor well-known secret formats.
    fn scrub(&self, text: &str) -> String {
        scrub_secrets(text, &self.values())
    }
}

/// After a failed deployment the app is `running` if something still serves, else `failed`.
pub async fn settle_app_status(state: &AppState, app_id: uuid::Uuid) -> Result<()> {
    let app = state.store.get_app_by_id(app_id).await?;
    let in_flight = state
        .store
        .list_deployments(app_id, 5)
        .await?
        .iter()
        .any(|d| d.status.is_in_flight());
    let status = if in_flight {
        hanzo_core::AppStatus::Deploying
    } else if app.current_deployment_id.is_some() {
        if app.instances == 0 {
            hanzo_core::AppStatus::Stopped
        } else {
            hanzo_core::AppStatus::Running
        }
    } else {
        hanzo_core::AppStatus::Failed
    };
    state
        .store
        .update_app(
            app_id,
            AppPatch {
                status: Some(status),
                ..Default::default()
            },
            None,
        )
        .await?;
    Ok(())
}

async fn build(
    state: &AppState,
    d: &Deployment,
    cancel: CancellationToken,
    secrets: &mut Secrets,
) -> Result<()> {
    let store = &state.store;
    let app = store.get_app_by_id(d.app_id).await?;
    let branch = match &d.source {
        DeploymentSource::Git { branch } => branch.clone(),
        other => bail!("deployment {} is not a git deployment ({other:?})", d.id),
    };
    store
        .update_app(
            d.app_id,
            AppPatch {
                status: Some(hanzo_core::AppStatus::Deploying),
                ..Default::default()
            },
            None,
        )
        .await?;
    store
        .add_event(
            d.id,
            EventType::BuildStarted,
            &secrets.scrub(&format!("building {} branch {branch}", app.repo)),
        )
        .await?;
    log(
        state,
        d,
        secrets,
        &format!("==> cloning {} (branch {branch})\n", app.repo),
    )
    .await;

    let work = state.config.builds_dir().join(d.id.to_string());
    let _ = tokio::fs::remove_dir_all(&work).await;
    let _cleanup = RemoveOnDrop(work.clone());
    let src = work.join("src");
    let checkout = or_cancel(
        &cancel,
        hanzo_build::fetch_source(&app.repo, &branch, &src, CLONE_TIMEOUT),
    )
    .await?;
    store
        .update_deployment(
            d.id,
            DeploymentPatch {
                git_commit: Some(checkout.commit.clone()),
                git_message: Some(secrets.scrub(&checkout.message)),
                ..Default::default()
            },
        )
        .await?;
    log(
        state,
        d,
        secrets,
        &format!(
            "==> commit {} {}\n",
            short_sha(&checkout.commit),
            checkout.message
        ),
    )
    .await;

    let manifest = load_manifest(&checkout.dir, &app)?;
    let mut manifest_json =
        serde_json::to_value(&manifest).context("cannot record the manifest")?;
    redact_secret_build_args(&mut manifest_json);
    store
        .update_deployment(
            d.id,
            DeploymentPatch {
                manifest: Some(manifest_json),
                ..Default::default()
            },
        )
        .await?;

    let settings = build_settings(&state.config);
    let plan = hanzo_build::plan(&manifest, &checkout.dir, &settings)?;
    // Build arguments named like secrets are treated as secrets (see `secret_build_args`).
    secrets.add(plan.secret_build_args());
    log(
        state,
        d,
        secrets,
        &format!(
            "==> runtime {} ({}), build timeout {}s\n",
            plan.runtime.family(),
            if plan.generated {
                "generated Dockerfile"
            } else {
                "your Dockerfile"
            },
            plan.timeout.as_secs()
        ),
    )
    .await;

    let repo = hanzo_core::image_repository(
        state.config.registry.as_ref().map(|r| r.prefix.as_str()),
        &app.org,
        &app.name,
    );
    let tag = format!("{repo}:{}", short_sha(&checkout.commit));
    let latest = format!("{repo}:latest");
    let auth = registry_auth(state);

    let builder = state.engine.builder()?;
    let (tx, rx) = mpsc::channel::<String>(256);
    let forward = tokio::spawn(forward_logs(state.clone(), d.id, secrets.values(), rx));

    let options = tokio::select! {
        o = cache_options(state, &builder, &latest, auth.as_ref(), &tx) => o,
        _ = cancel.cancelled() => BuildOptions::default(),
    };
    let built = builder
        .build_with(
            &plan,
            &[tag.clone(), latest.clone()],
            &secrets.values(),
            tx.clone(),
            cancel.clone(),
            &options,
        )
        .await;
    let image_id = match built {
        Ok(id) => id,
        Err(e) => {
            drop(tx);
            let _ = forward.await;
            return Err(e.into());
        }
    };

    // An image that keeps a secret is never pushed, nor left as the cache anchor.
    if let Err(e) = builder.check_history(&image_id, &secrets.named).await {
        drop(tx);
        let _ = forward.await;
        let _ = builder.remove_image(&tag).await;
        let _ = builder.remove_image(&latest).await;
        return Err(e.into());
    }

    let digest = if state.config.registry.is_some() {
        store
            .transition_deployment(
                d.id,
                DeploymentStatus::Building,
                DeploymentPatch {
                    status: Some(DeploymentStatus::Pushing),
                    image_tag: Some(tag.clone()),
                    ..Default::default()
                },
            )
            .await?;
        let _ = tx.send(format!("==> pushing {tag}")).await;
        let pushed = or_cancel(&cancel, async {
            let digest = push(&builder, &tag, auth.as_ref(), &tx).await?;
            push(&builder, &latest, auth.as_ref(), &tx).await?;
            anyhow::Ok(digest)
        })
        .await;
        match pushed {
            Ok(digest) => digest,
            Err(e) => {
                drop(tx);
                let _ = forward.await;
                return Err(e);
            }
        }
    } else {
        let _ = tx
            .send(format!(
                "==> no registry configured: {tag} stays in the local engine"
            ))
            .await;
        image_id.clone()
    };
    drop(tx);
    let _ = forward.await;

    // The point of no return: from here the deployment goes to the reconciler, and a
    // cancel request is answered "can no longer be cancelled".
    if let Ok(mut m) = state.running_builds.lock() {
        m.remove(&d.id);
    }
    if cancel.is_cancelled() {
        bail!("the build was cancelled");
    }
    let from = if state.config.registry.is_some() {
        DeploymentStatus::Pushing
    } else {
        DeploymentStatus::Building
    };
    store
        .transition_deployment(
            d.id,
            from,
            DeploymentPatch {
                status: Some(DeploymentStatus::Deploying),
                image_tag: Some(tag.clone()),
                image_digest: Some(digest.clone()),
                ..Default::default()
            },
        )
        .await?;
    store
        .add_event(
            d.id,
            EventType::BuildCompleted,
            &format!("built {tag} ({})", short_digest(&digest)),
        )
        .await?;
    store
        .update_app(
            d.app_id,
            AppPatch {
                desired_deployment_id: Some(Some(d.id)),
                instances: Some(manifest.deploy.instances),
                ..Default::default()
            },
            None,
        )
        .await?;
    info!(deployment = %d.id, %tag, "build finished; handing over to the reconciler");
    state.reconcile.notify_one();
    Ok(())
}

/// The recorded manifest keeps the names of build arguments that look like
/// secrets, not their values (the build itself reads them from the checkout).
fn redact_secret_build_args(manifest: &mut serde_json::Value) {
    if let Some(args) = manifest
        .pointer_mut("/build/args")
        .and_then(|a| a.as_object_mut())
    {
        for (name, value) in args.iter_mut() {
            if hanzo_build::looks_like_secret_name(name) {
                *value = serde_json::Value::String(hanzo_build::REDACTED.to_string());
            }
        }
    }
}

/// Runs `fut` unless the build is cancelled first; dropping it stops what it was
/// doing (git is killed, the engine stops a push whose client went away).
async fn or_cancel<T>(
    cancel: &CancellationToken,
    fut: impl std::future::Future<Output = Result<T, impl Into<anyhow::Error>>>,
) -> Result<T> {
    tokio::select! {
        r = fut => r.map_err(Into::into),
        _ = cancel.cancelled() => Err(anyhow!("the build was cancelled")),
    }
}

/// The registry credentials of the platform, if any.
fn registry_auth(state: &AppState) -> Option<RegistryAuth> {
    let reg = state.config.registry.as_ref()?;
    let username = reg.username.clone()?;
    Some(RegistryAuth {
        username,
        password: reg
            .password
            .clone()
            .unwrap_or_else(|| SecretString::from(String::new())),
    })
}

/// The application's cache: its `:latest` image. When the engine has it, its
/// local layer cache already holds every step of that build (and of earlier
/// stages), so nothing is passed; when it does not (a new engine, a pruned
/// one), the image is pulled back from the registry and used as `--cache-from`.
async fn cache_options(
    state: &AppState,
    builder: &hanzo_build::Builder,
    latest: &str,
    auth: Option<&RegistryAuth>,
    logs: &mpsc::Sender<String>,
) -> BuildOptions {
    if state.config.registry.is_none() || builder.has_image(latest).await.unwrap_or(true) {
        return BuildOptions::default();
    }
    match builder.pull(latest, auth, REGISTRY_TIMEOUT).await {
        Ok(true) => {
            let _ = logs
                .send(format!("==> build cache restored from {latest}"))
                .await;
            BuildOptions {
                cache_from: vec![latest.to_string()],
                ..Default::default()
            }
        }
        _ => BuildOptions::default(),
    }
}

/// A push with the registry timeout.
async fn push(
    builder: &hanzo_build::Builder,
    tag: &str,
    auth: Option<&RegistryAuth>,
    logs: &mpsc::Sender<String>,
) -> Result<String> {
    match tokio::time::timeout(REGISTRY_TIMEOUT, builder.push(tag, auth, logs.clone())).await {
        Ok(r) => Ok(r?),
        Err(_) => bail!(
            "pushing {tag} did not finish within {} minutes; check that the registry is reachable and has room",
            REGISTRY_TIMEOUT.as_secs() / 60
        ),
    }
}

/// Reads `hanzo.yaml` and checks it describes this application.
pub fn load_manifest(dir: &Path, app: &Application) -> Result<Manifest> {
    let manifest = hanzo_manifest::load(dir).map_err(|e| anyhow!("{e}"))?;
    if manifest.name != app.name || manifest.org != app.org {
        bail!(
            "hanzo.yaml describes {}/{} but this application is {}/{} — set `name: {}` and `org: {}` in hanzo.yaml",
            manifest.org,
            manifest.name,
            app.org,
            app.name,
            app.name,
            app.org
        );
    }
    if let Some(e) = manifest.env.iter().find(|e| e.secret) {
        bail!(
            "env {} is a secret from KMS, and this server has no KMS configured — configure KMS or make it a plain value",
            e.name
        );
    }
    Ok(manifest)
}

async fn log(state: &AppState, d: &Deployment, secrets: &Secrets, text: &str) {
    if let Err(e) = state.store.append_log(d.id, &secrets.scrub(text)).await {
        warn!(deployment = %d.id, "cannot store a build log line: {e}");
    }
}

/// Stores build output as it arrives: each line as soon as it is received, with
/// whatever else is already waiting (up to 64 KiB per write). Lines come without
/// their newline (from the builder) or with it (the pipeline's own): each ends up
/// on a line of its own. Known secret values are scrubbed once more (push output
/// only had the formats scrubbed).
async fn forward_logs(
    state: AppState,
    id: uuid::Uuid,
    secrets: Vec<SecretString>,
    mut rx: mpsc::Receiver<String>,
) {
    while let Some(first) = rx.recv().await {
        let mut chunk = String::new();
        push_line(&mut chunk, &first);
        while chunk.len() < 64 * 1024 {
            match rx.try_recv() {
                Ok(more) => push_line(&mut chunk, &more),
                Err(_) => break,
            }
        }
        let chunk = if secrets.is_empty() {
            chunk
        } else {
            scrub_secrets(&chunk, &secrets)
        };
        if let Err(e) = state.store.append_log(id, &chunk).await {
            warn!(deployment = %id, "cannot store build log: {e}");
        }
    }
}

/// Appends one line to `chunk`, ending it with exactly one newline.
fn push_line(chunk: &mut String, line: &str) {
    chunk.push_str(line.trim_end_matches(['\n', '\r']));
    chunk.push('\n');
}

pub fn short_sha(sha: &str) -> &str {
    &sha[..sha.len().min(7)]
}

fn short_digest(d: &str) -> &str {
    let hex = d.strip_prefix("sha256:").unwrap_or(d);
    &hex[..hex.len().min(12)]
}

struct RemoveOnDrop(std::path::PathBuf);
impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_never_run_together() {
        let mut chunk = String::new();
        for line in ["Step 1/3 : FROM node", "==> pushing x\n", "done\r\n", ""] {
            push_line(&mut chunk, line);
        }
        assert_eq!(chunk, "Step 1/3 : FROM node\n==> pushing x\ndone\n\n");
    }

    #[test]
    fn secrets_scrub_values_and_formats() {
        let s = Secrets {
            named: vec![(
                "HANZO_REGISTRY_PASSWORD".into(),
                SecretString::from("s3cret-registry-pw".to_string()),
            )],
        };
        assert_eq!(
            s.scrub("login s3cret-registry-pw ghp_0123456789abcdefghijABCDEFGHIJ012345 https://u:pw@host/x"),
            "login [REDACTED] [REDACTED] https://u:[REDACTED]@host/x"
        );
    }

    #[test]
    fn recorded_manifests_keep_secret_build_args_by_name_only() {
        let mut m = serde_json::json!({"build": {"args": {"NPM_TOKEN": "t0ken-value", "NODE_ENV": "production"}}});
        redact_secret_build_args(&mut m);
        assert_eq!(
            m,
            serde_json::json!({"build": {"args": {"NPM_TOKEN": "[REDACTED]", "NODE_ENV": "production"}}})
        );
    }

    #[tokio::test]
    async fn logs_older_than_30_days_are_pruned() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = hanzo_store::connect(&url).await.expect("store");
        let app = store
            .create_app(
                hanzo_store::NewApp {
                    name: "web".into(),
                    org: "acme".into(),
                    repo: "/r".into(),
                    branch: "main".into(),
                    runtime: "auto".into(),
                },
                None,
            )
            .await
            .expect("app");
        let d = store
            .create_deployment(
                hanzo_store::NewDeployment {
                    app_id: app.id,
                    source: DeploymentSource::Git {
                        branch: "main".into(),
                    },
                    deployed_by: "admin".into(),
                    image_tag: String::new(),
                    image_digest: None,
                    git_commit: String::new(),
                    git_message: String::new(),
                    url: String::new(),
                },
                None,
            )
            .await
            .expect("deployment");
        store.append_log(d.id, "line\n").await.expect("log");
        let now = chrono::Utc::now();
        assert_eq!(prune_old_logs(store.as_ref(), now).await.expect("prune"), 0);
        assert_eq!(
            store.read_log(d.id, 0).await.expect("read").len(),
            1,
            "a fresh log is kept"
        );
        let later = now + chrono::Duration::days(31);
        assert_eq!(
            prune_old_logs(store.as_ref(), later).await.expect("prune"),
            1
        );
        assert!(store.read_log(d.id, 0).await.expect("read").is_empty());
    }
}
