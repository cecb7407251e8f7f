//! The REST API under `/api/v1`.
//!
//! Every route is registered through [`Routes::at`], so [`route_paths`] is
//! exactly the set of paths [`router`] serves; the OpenAPI document
//! (`crates/server/openapi.json`, served at `/api/v1/openapi.json`) is checked
//! against both by `tests/openapi.rs`.

mod admin;
mod apps;
mod deployments;
pub mod extract;
mod logs;
pub mod openapi;
pub mod retention;
mod settings;
pub mod webhooks;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post, put};
use axum::{Json, Router};
use hanzo_store::StoreError;
use serde_json::json;

use crate::auth::{Principal, token_hash};
use crate::state::AppState;
use extract::ClientInfo;

/// The route table under construction: the router and the paths it serves.
struct Routes {
    router: Router<AppState>,
    paths: Vec<&'static str>,
}

impl Routes {
    fn at(mut self, path: &'static str, methods: MethodRouter<AppState>) -> Self {
        self.router = self.router.route(path, methods);
        self.paths.push(path);
        self
    }
}

fn routes() -> Routes {
    Routes {
        router: Router::new(),
        paths: Vec::new(),
    }
    .at("/api/v1/health", get(health))
    .at("/api/v1/openapi.json", get(openapi::serve))
    .at("/api/v1/whoami", get(whoami))
    .at("/api/v1/apps", get(apps::list).post(apps::create))
    .at("/api/v1/apps/{app}", get(apps::show).delete(apps::delete))
    .at("/api/v1/apps/{app}/deploy", post(deployments::deploy))
    .at("/api/v1/apps/{app}/rollback", post(deployments::rollback))
    .at("/api/v1/apps/{app}/scale", post(apps::scale))
    .at("/api/v1/apps/{app}/deployments", get(deployments::list))
    .at("/api/v1/apps/{app}/env", get(settings::list_env))
    .at(
        "/api/v1/apps/{app}/env/{key}",
        put(settings::set_env).delete(settings::delete_env),
    )
    .at(
        "/api/v1/apps/{app}/domains",
        get(settings::list_domains).post(settings::add_domain),
    )
    .at(
        "/api/v1/apps/{app}/domains/{domain}",
        delete(settings::remove_domain),
    )
    .at("/api/v1/apps/{app}/logs", get(logs::logs))
    .at("/api/v1/apps/{app}/cron-runs", get(deployments::cron_runs))
    .at("/api/v1/apps/{app}/webhook", get(webhooks::info))
    .at("/api/v1/deployments/{id}", get(deployments::show))
    .at("/api/v1/deployments/{id}/events", get(deployments::events))
    .at("/api/v1/deployments/{id}/logs", get(deployments::logs))
    .at("/api/v1/deployments/{id}/cancel", post(deployments::cancel))
    .at(
        "/api/v1/orgs",
        get(admin::list_orgs).post(admin::create_org),
    )
    .at("/api/v1/orgs/{org}/members", get(admin::list_members))
    .at(
        "/api/v1/orgs/{org}/members/{user}",
        put(admin::set_member).delete(admin::remove_member),
    )
    .at("/api/v1/users", post(admin::create_user))
    .at(
        "/api/v1/tokens",
        get(admin::list_tokens).post(admin::create_token),
    )
    .at("/api/v1/tokens/{id}", delete(admin::revoke_token))
    .at("/api/v1/audit", get(admin::audit))
    .at("/api/v1/hooks/{provider}/{app_id}", post(webhooks::receive))
}

/// Every path template the API serves (axum syntax, `{param}`), in registration order.
pub fn route_paths() -> Vec<&'static str> {
    routes().paths
}

pub fn router(state: AppState) -> Router {
    routes()
        .router
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(extract::refuse_nul))
        .with_state(state)
}

/// Runtimes an application may declare (spec: `Application.runtime`).
pub const RUNTIMES: &[&str] = &["auto", "node", "python", "go", "rust", "docker"];

/// A git branch name as `git check-ref-format --branch` would take it, roughly:
/// no spaces or control characters, no `..`, not starting with `-` or `/`.
pub fn check_branch(branch: &str) -> Result<(), ApiError> {
    let bad = branch.is_empty()
        || branch.len() > 255
        || branch.starts_with(['-', '/', '.'])
        || branch.ends_with(['/', '.'])
        || branch.ends_with(".lock")
        || branch.contains("..")
        || branch.contains("@{")
        || branch
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || "~^:?*[\\".contains(c));
    if bad {
        return Err(ApiError::bad_request(format!(
            "{branch:?} is not a branch name — use a name like main or feature/x"
        )));
    }
    Ok(())
}

async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!(
            "there is no API route {method} {} — the routes are listed in /api/v1/openapi.json",
            uri.path()
        ),
    )
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "{} does not accept {method} — the methods it accepts are listed in /api/v1/openapi.json",
            uri.path()
        ),
    )
}

async fn health(State(state): State<AppState>) -> Response {
    let docker = match state.target.ping().await {
        Ok(()) => json!({"ok": true}),
        Err(e) => json!({"ok": false, "error": e.to_string()}),
    };
    Json(json!({"status": "ok", "docker": docker})).into_response()
}

async fn whoami(p: Principal) -> Response {
    Json(json!({"user": p.user, "memberships": p.memberships})).into_response()
}

/// An error as the API returns it: a status and one sentence naming the cause and the fix.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }
    pub fn bad_request(m: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, m)
    }
    /// "<what> not found", with where to look up the right name.
    pub fn not_found(what: &str) -> Self {
        let fix = match what.split_whitespace().next().unwrap_or("") {
            "deployment" => "list the deployments with `hanzo status APP`",
            "domain" => "list the domains with `hanzo domains APP`",
            "environment" => "list the variables with `hanzo env APP`",
            "token" => "list your tokens with `hanzo tokens`",
            "organisation" => "list your organisations with `hanzo orgs`",
            "user" | "member" => "list the members with `hanzo orgs members ORG`",
            "webhook" => "copy the URL again from `hanzo webhook APP`",
            _ => "check the name with `hanzo apps`",
        };
        Self::new(StatusCode::NOT_FOUND, format!("{what} not found — {fix}"))
    }
    pub fn forbidden(m: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, m)
    }
    pub fn conflict(m: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, m)
    }
    pub fn unavailable(m: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, m)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({"error": self.message}))).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { what } => ApiError::not_found(&what),
            StoreError::Conflict { what } => {
                ApiError::conflict(format!("{what} already exists — choose another name"))
            }
            StoreError::StaleStatus { .. } => ApiError::conflict(e.to_string()),
            other => {
                tracing::error!("store error: {other}");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the platform database failed; the server log has details — try again",
                )
            }
        }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        tracing::error!("internal error: {e:#}");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}"))
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let unauthorized = |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, m);
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                unauthorized(
                    "no API token — run `hanzo login` or send `Authorization: Bearer <token>`",
                )
            })?;
        let secret = header
            .strip_prefix("Bearer ")
            .ok_or_else(|| unauthorized("the Authorization header must be `Bearer <token>`"))?;
        let (_, user) = state
            .store
            .find_token(&token_hash(secret.trim()), chrono::Utc::now())
            .await?
            .ok_or_else(|| unauthorized("the API token is unknown, revoked or expired — run `hanzo login` with a valid token"))?;
        let memberships = state.store.memberships(&user.id).await?;
        let client = match ClientInfo::from_request_parts(parts, state).await {
            Ok(c) => c,
            Err(never) => match never {},
        };
        Ok(Principal {
            user,
            memberships,
            ip: client.ip,
            user_agent: client.user_agent,
        })
    }
}
