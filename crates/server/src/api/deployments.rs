//! Deployments: deploy, roll back, follow, cancel.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hanzo_core::{Application, Deployment, DeploymentSource, DeploymentStatus, EventType};
use hanzo_store::{AppPatch, DeploymentPatch, NewDeployment};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::ApiError;
use super::apps::{OrgQuery, resolve_app, resolve_app_for};
use super::extract::{ApiPath, ApiQuery, OptionalJson};
use crate::auth::{Action, Principal, authorize};
use crate::state::AppState;

#[derive(Debug, Deserialize, Default)]
pub struct DeployBody {
    /// Branch to build (default: the application's branch).
    pub branch: Option<String>,
    /// A prebuilt image to deploy as it is.
    pub image: Option<String>,
    /// hanzo.yaml text for image deployments (default: the last deployment's manifest).
    pub manifest: Option<String>,
}

async fn require_docker(state: &AppState) -> Result<(), ApiError> {
    state
        .target
        .ping()
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))
}

pub async fn deploy(
    State(state): State<AppState>,
    p: Principal,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<OrgQuery>,
    OptionalJson(body): OptionalJson<DeployBody>,
) -> Result<Response, ApiError> {
    let app = resolve_app_for(&state, &p, &name, q.org.as_deref(), Action::Deploy).await?;
    require_docker(&state).await?;

    if let Some(image) = body
        .image
        .map(|i| i.trim().to_string())
        .filter(|i| !i.is_empty())
    {
        if image.len() > 512
            || image.starts_with('-')
            || image.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(ApiError::bad_request(format!(
                "{image:?} is not an image reference — use a name like registry/app:tag"
            )));
        }
        let manifest = match body.manifest {
            Some(text) => {
                let m = hanzo_manifest::parse(&text, "hanzo.yaml").map_err(|e| ApiError::bad_request(e.to_string()))?;
                serde_json::to_value(m).map_err(anyhow::Error::from)?
            }
            None => last_manifest(&state, &app).await?.ok_or_else(|| {
                ApiError::bad_request(format!(
                    "{name} has never been deployed from source, so there is no hanzo.yaml to run {image} with — run the command where hanzo.yaml is, or deploy from git first"
                ))
            })?,
        };
        let audit = p.audit(&app.org, Some(&app.name), "deploy", json!({"image": image}));
        let d = state
            .store
            .create_deployment(
                NewDeployment {
                    app_id: app.id,
                    source: DeploymentSource::Image {
                        image: image.clone(),
                    },
                    deployed_by: p.user.id.clone(),
                    image_tag: image.clone(),
                    image_digest: None,
                    git_commit: String::new(),
                    git_message: String::new(),
                    url: String::new(),
                },
                Some(&audit),
            )
            .await?;
        let d = hand_to_reconciler(&state, &app, d, manifest, None).await?;
        return Ok((StatusCode::ACCEPTED, Json(d)).into_response());
    }

    let branch = body.branch.unwrap_or_else(|| app.branch.clone());
    super::check_branch(&branch)?;
    let audit = p.audit(
        &app.org,
        Some(&app.name),
        "deploy",
        json!({"branch": branch}),
    );
    let d = queue_git_build(&state, &app, &branch, &p.user.id, &audit).await?;
    Ok((StatusCode::ACCEPTED, Json(d)).into_response())
}

/// Records a git deployment (queued, with its audit row in the same
/// transaction), marks the application deploying and wakes a build worker.
/// The one way a build is asked for: `hanzo deploy` and push webhooks alike.
pub async fn queue_git_build(
    state: &AppState,
    app: &Application,
    branch: &str,
    deployed_by: &str,
    audit: &hanzo_core::NewAudit,
) -> Result<Deployment, ApiError> {
    let d = state
        .store
        .create_deployment(
            NewDeployment {
                app_id: app.id,
                source: DeploymentSource::Git {
                    branch: branch.to_string(),
                },
                deployed_by: deployed_by.to_string(),
                image_tag: String::new(),
                image_digest: None,
                git_commit: String::new(),
                git_message: String::new(),
                url: String::new(),
            },
            Some(audit),
        )
        .await?;
    state
        .store
        .update_app(
            app.id,
            AppPatch {
                status: Some(hanzo_core::AppStatus::Deploying),
                ..Default::default()
            },
            None,
        )
        .await?;
    state.builds.notify_one();
    Ok(d)
}

async fn last_manifest(
    state: &AppState,
    app: &Application,
) -> Result<Option<serde_json::Value>, ApiError> {
    let list = state.store.list_deployments(app.id, 50).await?;
    Ok(list.into_iter().find_map(|d| d.manifest))
}

/// Makes a deployment whose image is already known the app's desired one.
async fn hand_to_reconciler(
    state: &AppState,
    app: &Application,
    d: Deployment,
    manifest: serde_json::Value,
    event: Option<(EventType, String)>,
) -> Result<Deployment, ApiError> {
    let instances = serde_json::from_value::<hanzo_manifest::Manifest>(manifest.clone())
        .map(|m| m.deploy.instances)
        .unwrap_or(1);
    let d = state
        .store
        .transition_deployment(
            d.id,
            DeploymentStatus::Queued,
            DeploymentPatch {
                status: Some(DeploymentStatus::Deploying),
                manifest: Some(manifest),
                ..Default::default()
            },
        )
        .await?;
    if let Some((kind, msg)) = event {
        state.store.add_event(d.id, kind, &msg).await?;
    }
    state
        .store
        .update_app(
            app.id,
            AppPatch {
                desired_deployment_id: Some(Some(d.id)),
                instances: Some(instances),
                status: Some(hanzo_core::AppStatus::Deploying),
                ..Default::default()
            },
            None,
        )
        .await?;
    state.reconcile.notify_one();
    Ok(d)
}

#[derive(Debug, Deserialize, Default)]
pub struct RollbackBody {
    /// An image tag (`abc123f` or the full reference), a commit prefix, or N
    /// for the N-th most recent earlier deployment. Default: the previous one.
    pub to: Option<String>,
}

/// Deployments one can roll back to, newest first: built, once served, not the current one.
fn rollback_candidates(app: &Application, history: &[Deployment]) -> Vec<Deployment> {
    let current_image = app
        .current_deployment_id
        .and_then(|c| history.iter().find(|d| d.id == c))
        .map(|d| d.image_tag.clone());
    history
        .iter()
        .filter(|d| Some(d.id) != app.current_deployment_id)
        .filter(|d| !d.image_tag.is_empty() && d.manifest.is_some())
        .filter(|d| {
            matches!(
                d.status,
                DeploymentStatus::Superseded
                    | DeploymentStatus::RolledBack
                    | DeploymentStatus::Running
            )
        })
        .filter(|d| Some(&d.image_tag) != current_image.as_ref())
        .cloned()
        .collect()
}

pub async fn rollback(
    State(state): State<AppState>,
    p: Principal,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<OrgQuery>,
    OptionalJson(body): OptionalJson<RollbackBody>,
) -> Result<Response, ApiError> {
    let app = resolve_app_for(&state, &p, &name, q.org.as_deref(), Action::Rollback).await?;
    require_docker(&state).await?;
    let history = state
        .store
        .list_deployments(app.id, crate::reconciler::KEEP_DEPLOYMENTS)
        .await?;
    let candidates = rollback_candidates(&app, &history);
    let target = match body.to.as_deref().map(str::trim) {
        None | Some("") => candidates.first().cloned().ok_or_else(|| {
            ApiError::conflict(format!("{name} has no earlier deployment to roll back to — `hanzo status {name}` shows its history"))
        })?,
        Some(to) => match to.parse::<usize>() {
            Ok(n) if n >= 1 && to.len() < 4 => candidates.get(n - 1).cloned().ok_or_else(|| {
                ApiError::bad_request(format!("{name} has only {} earlier deployment(s) to roll back to — pick a smaller N", candidates.len()))
            })?,
            _ => candidates
                .iter()
                .find(|d| d.image_tag == to || d.image_tag.ends_with(&format!(":{to}")) || (to.len() >= 7 && d.git_commit.starts_with(to)))
                .cloned()
                .ok_or_else(|| ApiError::bad_request(format!("no earlier deployment of {name} has tag or commit {to} — `hanzo status {name}` lists them")))?,
        },
    };
    let audit = p.audit(
        &app.org,
        Some(&app.name),
        "rollback",
        json!({"to": target.image_tag, "deployment": target.id}),
    );
    let d = state
        .store
        .create_deployment(
            NewDeployment {
                app_id: app.id,
                source: DeploymentSource::Rollback { of: target.id },
                deployed_by: p.user.id.clone(),
                image_tag: target.image_tag.clone(),
                image_digest: target.image_digest.clone(),
                git_commit: target.git_commit.clone(),
                git_message: target.git_message.clone(),
                url: target.url.clone(),
            },
            Some(&audit),
        )
        .await?;
    let manifest = target.manifest.clone().unwrap_or_default();
    let d = hand_to_reconciler(
        &state,
        &app,
        d,
        manifest,
        Some((
            EventType::RollbackInitiated,
            format!(
                "rolling back to deployment #{} ({})",
                target.number, target.image_tag
            ),
        )),
    )
    .await?;
    Ok((StatusCode::ACCEPTED, Json(d)).into_response())
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    pub org: Option<String>,
    pub limit: Option<u32>,
}

pub async fn list(
    State(state): State<AppState>,
    p: Principal,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    let app = resolve_app(&state, &p, &name, q.org.as_deref()).await?;
    let list = state
        .store
        .list_deployments(app.id, q.limit.unwrap_or(25).min(100))
        .await?;
    Ok(Json(list).into_response())
}

/// Runs of the application's cron services, newest first.
pub async fn cron_runs(
    State(state): State<AppState>,
    p: Principal,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    let app = resolve_app(&state, &p, &name, q.org.as_deref()).await?;
    let runs = state
        .store
        .list_cron_runs(app.id, q.limit.unwrap_or(25).min(100))
        .await?;
    Ok(Json(runs).into_response())
}

/// A deployment the principal may read.
async fn visible_deployment(
    state: &AppState,
    p: &Principal,
    id: &str,
) -> Result<(Deployment, Application), ApiError> {
    let what = format!("deployment {id}");
    let id: Uuid = id.parse().map_err(|_| ApiError::not_found(&what))?;
    let d = state.store.get_deployment(id).await?;
    let app = state.store.get_app_by_id(d.app_id).await?;
    authorize(state, p, &app.org, Action::Read, &what).await?;
    Ok((d, app))
}

pub async fn show(
    State(state): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let (d, _) = visible_deployment(&state, &p, &id).await?;
    Ok(Json(d).into_response())
}

pub async fn events(
    State(state): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let (d, _) = visible_deployment(&state, &p, &id).await?;
    Ok(Json(state.store.list_events(d.id).await?).into_response())
}

#[derive(Debug, Deserialize)]
pub struct LogQuery {
    /// Return chunks after this sequence number.
    pub after: Option<i64>,
    /// Wait up to this many seconds for new output (long poll).
    pub wait: Option<u64>,
}

pub async fn logs(
    State(state): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<LogQuery>,
) -> Result<Response, ApiError> {
    let (d, _) = visible_deployment(&state, &p, &id).await?;
    let after = q.after.unwrap_or(0);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(q.wait.unwrap_or(0).min(30));
    loop {
        let chunks = state.store.read_log(d.id, after).await?;
        let status = state.store.get_deployment(d.id).await?.status;
        if !chunks.is_empty() || tokio::time::Instant::now() >= deadline || !status.is_in_flight() {
            let last = chunks.last().map(|c| c.seq).unwrap_or(after);
            let text: String = chunks.iter().map(|c| c.text.as_str()).collect();
            return Ok(Json(json!({"after": last, "text": text, "status": status})).into_response());
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

pub async fn cancel(
    State(state): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let (d, app) = visible_deployment(&state, &p, &id).await?;
    authorize(
        &state,
        &p,
        &app.org,
        Action::Deploy,
        &format!("deployment {id}"),
    )
    .await?;
    if d.status == DeploymentStatus::Queued {
        let d = state
            .store
            .transition_deployment(
                d.id,
                DeploymentStatus::Queued,
                DeploymentPatch {
                    status: Some(DeploymentStatus::Cancelled),
                    completed_at: Some(chrono::Utc::now()),
                    ..Default::default()
                },
            )
            .await?;
        crate::pipeline::settle_app_status(&state, app.id).await?;
        return Ok(Json(d).into_response());
    }
    let token = state
        .running_builds
        .lock()
        .ok()
        .and_then(|m| m.get(&d.id).cloned());
    match token {
        Some(t) => {
            t.cancel();
            Ok((StatusCode::ACCEPTED, Json(d)).into_response())
        }
        None => Err(ApiError::conflict(format!(
            "deployment {id} is {} and can no longer be cancelled",
            d.status
        ))),
    }
}
