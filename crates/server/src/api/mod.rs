//! The REST API under `/api/v1`.

mod admin;
mod apps;
mod deployments;
mod settings;
pub mod webhooks;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hanzo_store::StoreError;
use serde_json::json;

use crate::auth::{Principal, token_hash};
use crate::state::AppState;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/health", get(health))
        .route("/api/v1/whoami", get(whoami))
        .route("/api/v1/apps", get(apps::list).post(apps::create))
        .route("/api/v1/apps/{app}", get(apps::show).delete(apps::delete))
        .route("/api/v1/apps/{app}/deploy", post(deployments::deploy))
        .route("/api/v1/apps/{app}/rollback", post(deployments::rollback))
        .route("/api/v1/apps/{app}/scale", post(apps::scale))
        .route("/api/v1/apps/{app}/deployments", get(deployments::list))
        .route("/api/v1/deployments/{id}", get(deployments::show))
        .route("/api/v1/deployments/{id}/events", get(deployments::events))
        .route("/api/v1/deployments/{id}/logs", get(deployments::logs))
        .route("/api/v1/deployments/{id}/cancel", post(deployments::cancel))
        .route("/api/v1/apps/{app}/env", get(settings::list_env))
        .route(
            "/api/v1/apps/{app}/env/{key}",
            axum::routing::put(settings::set_env).delete(settings::delete_env),
        )
        .route(
            "/api/v1/apps/{app}/domains",
            get(settings::list_domains).post(settings::add_domain),
        )
        .route(
            "/api/v1/apps/{app}/domains/{domain}",
            axum::routing::delete(settings::remove_domain),
        )
        .route(
            "/api/v1/orgs",
            get(admin::list_orgs).post(admin::create_org),
        )
        .route("/api/v1/orgs/{org}/members", get(admin::list_members))
        .route(
            "/api/v1/orgs/{org}/members/{user}",
            axum::routing::put(admin::set_member).delete(admin::remove_member),
        )
        .route("/api/v1/users", post(admin::create_user))
        .route(
            "/api/v1/tokens",
            get(admin::list_tokens).post(admin::create_token),
        )
        .route(
            "/api/v1/tokens/{id}",
            axum::routing::delete(admin::revoke_token),
        )
        .route("/api/v1/audit", get(admin::audit))
        .route("/api/v1/apps/{app}/webhook", get(webhooks::info))
        .route("/api/v1/hooks/{provider}/{app_id}", post(webhooks::receive))
        .with_state(state)
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
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            format!("{what} not found — check the name with `hanzo apps`"),
        )
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
        let ip = parts
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(|s| s.trim().to_string())
            .or_else(|| {
                parts
                    .extensions
                    .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                    .map(|c| c.0.ip().to_string())
            });
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Ok(Principal {
            user,
            memberships,
            ip,
            user_agent,
        })
    }
}
