//! Applications: register, list, show, delete, scale.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hanzo_core::{Application, validate_name};
use hanzo_runtime::Selector;
use hanzo_store::{AppPatch, NewApp};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::ApiError;
use super::extract::{ApiJson, ApiPath, ApiQuery};
use crate::auth::{Action, Principal, authorize, record_denial};
use crate::state::AppState;

#[derive(Debug, Deserialize, Default)]
pub struct OrgQuery {
    pub org: Option<String>,
}

/// Finds an application the principal can see, by name (and org when given).
pub async fn resolve_app(
    state: &AppState,
    p: &Principal,
    name: &str,
    org: Option<&str>,
) -> Result<Application, ApiError> {
    let what = format!("application {name}");
    if let Some(org) = org {
        authorize(state, p, org, Action::Read, &what).await?;
        return Ok(state.store.get_app(org, name).await?);
    }
    let visible = p.visible_orgs();
    let mut matches: Vec<Application> = state
        .store
        .list_apps(visible.as_deref())
        .await?
        .into_iter()
        .filter(|a| a.name == name || a.id.to_string() == name)
        .collect();
    match matches.len() {
        0 => {
            // Not visible. If it exists in another organisation, tell that
            // organisation's audit log (never the caller) that someone tried.
            if visible.is_some() {
                let hidden = state.store.list_apps(None).await?;
                for a in hidden
                    .iter()
                    .filter(|a| a.name == name || a.id.to_string() == name)
                {
                    record_denial(state, p, &a.org, Some(&a.name), Action::Read, &what).await;
                }
            }
            Err(ApiError::not_found(&what))
        }
        1 => Ok(matches.remove(0)),
        _ => {
            let orgs: Vec<String> = matches.iter().map(|a| a.org.clone()).collect();
            Err(ApiError::conflict(format!(
                "an application named {name} exists in several organisations ({}) — pass --org (or ?org=)",
                orgs.join(", ")
            )))
        }
    }
}

/// Finds an application the principal can see and checks they may do `action`
/// on it — the preamble of every per-application handler.
pub async fn resolve_app_for(
    state: &AppState,
    p: &Principal,
    name: &str,
    org: Option<&str>,
    action: Action,
) -> Result<Application, ApiError> {
    let app = resolve_app(state, p, name, org).await?;
    authorize(state, p, &app.org, action, &format!("application {name}")).await?;
    Ok(app)
}

pub async fn list(
    State(state): State<AppState>,
    p: Principal,
    ApiQuery(q): ApiQuery<OrgQuery>,
) -> Result<Response, ApiError> {
    let orgs = match q.org {
        Some(org) => {
            authorize(
                &state,
                &p,
                &org,
                Action::Read,
                &format!("organisation {org}"),
            )
            .await?;
            Some(vec![org])
        }
        None => p.visible_orgs(),
    };
    let apps = state.store.list_apps(orgs.as_deref()).await?;
    Ok(Json(apps).into_response())
}

#[derive(Debug, Deserialize)]
pub struct CreateApp {
    pub name: String,
    pub org: Option<String>,
    pub repo: String,
    pub branch: Option<String>,
    pub runtime: Option<String>,
}

pub async fn create(
    State(state): State<AppState>,
    p: Principal,
    ApiJson(body): ApiJson<CreateApp>,
) -> Result<Response, ApiError> {
    validate_name("application name", &body.name)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let org = match body.org {
        Some(o) => o,
        None => match p.memberships.as_slice() {
            [only] => only.org.clone(),
            _ => {
                return Err(ApiError::bad_request(
                    "which organisation? pass --org (the application belongs to exactly one)",
                ));
            }
        },
    };
    validate_name("organisation name", &org).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let repo = body.repo.trim().to_string();
    if repo.is_empty()
        || repo.len() > 2048
        || repo.starts_with('-')
        || repo.chars().any(char::is_control)
    {
        return Err(ApiError::bad_request(
            "the repository is missing or not a git URL or path — pass --repo with a git URL or a local path",
        ));
    }
    // A local path makes the server build from its own disk: global admins only.
    let remote = repo.contains("://") || (repo.contains('@') && repo.contains(':'));
    if !remote && !p.user.global_admin {
        return Err(ApiError::forbidden(
            "a local path as repository reads the server's own disk, which only global admins may do — give a git URL (https://… or git@…)",
        ));
    }
    let runtime = body.runtime.unwrap_or_else(|| "auto".into());
    if !super::RUNTIMES.contains(&runtime.as_str()) {
        return Err(ApiError::bad_request(format!(
            "runtime {runtime:?} does not exist — use one of {}",
            super::RUNTIMES.join(", ")
        )));
    }
    let branch = body.branch.unwrap_or_else(|| "main".into());
    super::check_branch(&branch)?;
    authorize(
        &state,
        &p,
        &org,
        Action::CreateApp,
        &format!("organisation {org}"),
    )
    .await?;
    state.store.ensure_org(&org).await?;
    let audit = p.audit(
        &org,
        Some(&body.name),
        "app.create",
        json!({"repo": repo, "branch": branch, "runtime": runtime}),
    );
    let app = state
        .store
        .create_app(NewApp { name: body.name.clone(), org: org.clone(), repo, branch, runtime }, Some(&audit))
        .await
        .map_err(|e| match e {
            hanzo_store::StoreError::Conflict { .. } => ApiError::conflict(format!(
                "an application named {} already exists in {org} — choose another name or delete it first",
                body.name
            )),
            other => other.into(),
        })?;
    Ok((StatusCode::CREATED, Json(app)).into_response())
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceView {
    pub name: String,
    pub deployment_id: String,
    pub image: String,
    pub state: String,
    pub address: Option<String>,
    /// Restarts by the engine (a crash) plus restarts and replacements by the
    /// platform (failed health checks, instances that died).
    pub restart_count: i64,
    /// Replaced again and again within a few minutes: replacements back off.
    pub crash_loop: bool,
    /// Failed its last `retries` health checks: out of the proxy until it passes again.
    pub unhealthy: bool,
}

/// An application with its current deployment, recent history and running instances.
pub async fn show(
    State(state): State<AppState>,
    p: Principal,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<OrgQuery>,
) -> Result<Response, ApiError> {
    let app = resolve_app(&state, &p, &name, q.org.as_deref()).await?;
    let history = state
        .store
        .list_deployments(app.id, crate::reconciler::KEEP_DEPLOYMENTS)
        .await?;
    let current = app
        .current_deployment_id
        .and_then(|id| history.iter().find(|d| d.id == id).cloned());
    let instances = match state
        .target
        .list(&Selector {
            org: Some(app.org.clone()),
            app: Some(app.name.clone()),
            deployment_id: None,
        })
        .await
    {
        Ok(list) => json!(
            list.into_iter()
                .map(|i| {
                    let health = state.health.view(&i.name);
                    InstanceView {
                        crash_loop: health.crash_loop,
                        unhealthy: health.unhealthy,
                        restart_count: i.restart_count + i64::from(health.restarts),
                        name: i.name,
                        deployment_id: i.deployment_id,
                        image: i.image,
                        state: format!("{:?}", i.state).to_lowercase(),
                        address: i.address.map(|a| a.to_string()),
                    }
                })
                .collect::<Vec<_>>()
        ),
        Err(e) => json!({"error": e.to_string()}),
    };
    let mut body = serde_json::to_value(&app).map_err(anyhow::Error::from)?;
    body["currentDeployment"] = serde_json::to_value(&current).map_err(anyhow::Error::from)?;
    body["deployments"] = serde_json::to_value(&history).map_err(anyhow::Error::from)?;
    body["instancesObserved"] = instances;
    Ok(Json(body).into_response())
}

pub async fn delete(
    State(state): State<AppState>,
    p: Principal,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<OrgQuery>,
) -> Result<Response, ApiError> {
    let app = resolve_app_for(&state, &p, &name, q.org.as_deref(), Action::DeleteApp).await?;
    // Take it out of the proxy and stop its instances first, then forget it.
    let key = crate::reconciler::proxy_key(&app.org, &app.name);
    state
        .proxy
        .remove(&key)
        .map_err(|e| ApiError::from(anyhow::Error::from(e)))?;
    let instances = state
        .target
        .list(&Selector {
            org: Some(app.org.clone()),
            app: Some(app.name.clone()),
            deployment_id: None,
        })
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    for i in instances {
        state
            .target
            .stop(&i.id, state.config.stop_grace)
            .await
            .map_err(|e| ApiError::unavailable(e.to_string()))?;
    }
    let audit = p.audit(
        &app.org,
        Some(&app.name),
        "app.delete",
        json!({"id": app.id}),
    );
    state.store.delete_app(app.id, Some(&audit)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Deserialize)]
pub struct ScaleBody {
    pub instances: u32,
}

pub async fn scale(
    State(state): State<AppState>,
    p: Principal,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<OrgQuery>,
    ApiJson(body): ApiJson<ScaleBody>,
) -> Result<Response, ApiError> {
    let app = resolve_app_for(&state, &p, &name, q.org.as_deref(), Action::Scale).await?;
    if body.instances > 100 {
        return Err(ApiError::bad_request(
            "at most 100 instances per application — ask for fewer",
        ));
    }
    if app.current_deployment_id.is_none() {
        return Err(ApiError::conflict(format!(
            "{name} has no running deployment to scale — deploy it first"
        )));
    }
    let audit = p.audit(
        &app.org,
        Some(&app.name),
        "scale",
        json!({"from": app.instances, "to": body.instances}),
    );
    let app = state
        .store
        .update_app(
            app.id,
            AppPatch {
                instances: Some(body.instances),
                ..Default::default()
            },
            Some(&audit),
        )
        .await?;
    state.reconcile.notify_one();
    Ok(Json(app).into_response())
}
