//! The build half of a deployment: clone → manifest → image → registry.
//!
//! Build workers claim queued git deployments from the store (at most one per
//! application at a time, `build_concurrency` in all), run them, and hand the
//! result to the reconciler by making the deployment the application's desired
//! one. A crash mid-build leaves the deployment `building`/`pushing`; at start-up
//! [`recover`] puts those back in the queue, since every step is repeatable.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use hanzo_build::{BuildSettings, RegistryAuth};
use hanzo_core::{Application, Deployment, DeploymentSource, DeploymentStatus, EventType};
use hanzo_manifest::Manifest;
use hanzo_store::{AppPatch, DeploymentPatch};
use secrecy::SecretString;
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

/// Puts builds interrupted by a crash back in the queue.
pub async fn recover(state: &AppState) -> Result<()> {
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

/// Runs `n` build workers until shutdown.
pub fn spawn_workers(state: AppState, n: usize) {
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
/// `deploying` (handed to the reconciler) or `failed`, never stays behind.
async fn run_build(state: &AppState, d: Deployment) {
    let cancel = state.shutdown.child_token();
    if let Ok(mut m) = state.running_builds.lock() {
        m.insert(d.id, cancel.clone());
    }
    let result = build(state, &d, cancel.clone()).await;
    if let Ok(mut m) = state.running_builds.lock() {
        m.remove(&d.id);
    }
    if state.shutdown.is_cancelled() {
        // Interrupted by shutdown: left in building, requeued by `recover` at next start.
        return;
    }
    match result {
        Ok(()) => {}
        Err(e) => {
            let cancelled = cancel.is_cancelled();
            let msg = if cancelled {
                "the build was cancelled".to_string()
            } else {
                format!("{e:#}")
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

async fn build(state: &AppState, d: &Deployment, cancel: CancellationToken) -> Result<()> {
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
            &format!("building {} branch {branch}", app.repo),
        )
        .await?;
    log(
        state,
        d,
        &format!("==> cloning {} (branch {branch})\n", app.repo),
    )
    .await;

    let work = state.config.builds_dir().join(d.id.to_string());
    let _ = tokio::fs::remove_dir_all(&work).await;
    let _cleanup = RemoveOnDrop(work.clone());
    let src = work.join("src");
    let checkout =
        hanzo_build::fetch_source(&app.repo, &branch, &src, Duration::from_secs(300)).await?;
    store
        .update_deployment(
            d.id,
            DeploymentPatch {
                git_commit: Some(checkout.commit.clone()),
                git_message: Some(checkout.message.clone()),
                ..Default::default()
            },
        )
        .await?;
    log(
        state,
        d,
        &format!(
            "==> commit {} {}\n",
            short_sha(&checkout.commit),
            checkout.message
        ),
    )
    .await;

    let manifest = load_manifest(&checkout.dir, &app)?;
    let timeout = manifest.build.timeout;
    let manifest_json = serde_json::to_value(&manifest).context("cannot record the manifest")?;
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
    log(
        state,
        d,
        &format!(
            "==> runtime {} ({})\n",
            plan.runtime.family(),
            if plan.generated {
                "generated Dockerfile"
            } else {
                "your Dockerfile"
            }
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

    let builder = state.engine.builder()?;
    let (tx, rx) = mpsc::channel::<String>(256);
    let forward = tokio::spawn(forward_logs(state.clone(), d.id, rx));
    let built = tokio::time::timeout(
        timeout,
        builder.build(
            &plan,
            &[tag.clone(), latest.clone()],
            &[],
            tx.clone(),
            cancel.clone(),
        ),
    )
    .await;
    let image_id = match built {
        Ok(r) => r?,
        Err(_) => {
            cancel.cancel();
            bail!(
                "the build took longer than {}s and was stopped — make it faster or raise build.timeout in hanzo.yaml",
                timeout.as_secs()
            )
        }
    };

    let digest = if let Some(reg) = &state.config.registry {
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
        let auth = reg.username.as_ref().map(|u| RegistryAuth {
            username: u.clone(),
            password: reg
                .password
                .clone()
                .unwrap_or_else(|| SecretString::from(String::new())),
        });
        let _ = tx.send(format!("==> pushing {tag}\n")).await;
        let digest = builder.push(&tag, auth.as_ref(), tx.clone()).await?;
        builder.push(&latest, auth.as_ref(), tx.clone()).await?;
        digest
    } else {
        let _ = tx
            .send(format!(
                "==> no registry configured: {tag} stays in the local engine\n"
            ))
            .await;
        image_id.clone()
    };
    drop(tx);
    let _ = forward.await;

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

async fn log(state: &AppState, d: &Deployment, text: &str) {
    if let Err(e) = state.store.append_log(d.id, text).await {
        warn!(deployment = %d.id, "cannot store a build log line: {e}");
    }
}

/// Stores build output as it arrives, in chunks of whatever is ready.
async fn forward_logs(state: AppState, id: uuid::Uuid, mut rx: mpsc::Receiver<String>) {
    while let Some(first) = rx.recv().await {
        let mut chunk = first;
        while chunk.len() < 64 * 1024 {
            match rx.try_recv() {
                Ok(more) => chunk.push_str(&more),
                Err(_) => break,
            }
        }
        if !chunk.ends_with('\n') {
            chunk.push('\n');
        }
        if let Err(e) = state.store.append_log(id, &chunk).await {
            warn!(deployment = %id, "cannot store build log: {e}");
        }
    }
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
