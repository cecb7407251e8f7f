//! Push webhooks: GitHub (`X-Hub-Signature-256`), GitLab (`X-Gitlab-Token`) and
//! a generic signed webhook (`X-Hanzo-Signature-256`, same scheme as GitHub).
//!
//! Each application has its own webhook URL and secret:
//! `/api/v1/hooks/{provider}/{app id}`, secret = HMAC-SHA256 of the app id
//! under the server's webhook key (kept in the data directory, never in the
//! database). The signature is checked over the raw body before anything is
//! parsed; a redelivered event (same delivery id) does not deploy twice.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hanzo_core::{Application, NewAudit};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::ApiError;
use super::apps::{OrgQuery, resolve_app_for};
use super::extract::{ApiPath, ApiQuery, ClientInfo};
use crate::auth::{Action, Principal};
use crate::state::AppState;

type HmacSha256 = Hmac<Sha256>;

/// The webhook secret of an application.
pub fn app_secret(key: &[u8], app_id: Uuid) -> String {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(b"webhook:");
    mac.update(app_id.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// `sha256=<hex>` over the body with the secret, as GitHub sends it.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac =
        HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Where to send pushes for an application, and the secret (developers only).
pub async fn info(
    State(state): State<AppState>,
    p: Principal,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<OrgQuery>,
) -> Result<Response, ApiError> {
    let app = resolve_app_for(&state, &p, &name, q.org.as_deref(), Action::Deploy).await?;
    let secret = app_secret(&state.webhook_key, app.id);
    Ok(Json(json!({
        "github": format!("/api/v1/hooks/github/{}", app.id),
        "gitlab": format!("/api/v1/hooks/gitlab/{}", app.id),
        "generic": format!("/api/v1/hooks/generic/{}", app.id),
        "secret": secret,
        "branch": app.branch,
    }))
    .into_response())
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn hook_audit(
    app: &Application,
    provider: &str,
    action: &str,
    details: Value,
    client: &ClientInfo,
) -> NewAudit {
    NewAudit {
        user_id: format!("webhook:{provider}"),
        user_email: String::new(),
        org: app.org.clone(),
        app: Some(app.name.clone()),
        action: action.to_string(),
        details,
        ip_address: client.ip.clone(),
        user_agent: client.user_agent.clone(),
    }
}

/// A 200 answer for an event that is understood but does not deploy.
fn ignored(reason: impl Into<String>) -> Response {
    (StatusCode::OK, Json(json!({"ignored": reason.into()}))).into_response()
}

pub async fn receive(
    State(state): State<AppState>,
    ApiPath((provider, app_id)): ApiPath<(String, String)>,
    client: ClientInfo,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::not_found("webhook");
    let app_id: Uuid = app_id.parse().map_err(|_| not_found())?;
    let app = state
        .store
        .get_app_by_id(app_id)
        .await
        .map_err(|_| not_found())?;
    let secret = app_secret(&state.webhook_key, app.id);

    // 1. Authenticate the raw body.
    let (valid, delivery) = match provider.as_str() {
        "github" => (
            header(&headers, "x-hub-signature-256")
                .is_some_and(|s| same(s, &signature(&secret, &body))),
            header(&headers, "x-github-delivery"),
        ),
        "gitlab" => (
            header(&headers, "x-gitlab-token").is_some_and(|t| same(t, &secret)),
            header(&headers, "x-gitlab-event-uuid").or_else(|| header(&headers, "idempotency-key")),
        ),
        "generic" => (
            header(&headers, "x-hanzo-signature-256")
                .is_some_and(|s| same(s, &signature(&secret, &body))),
            header(&headers, "x-hanzo-delivery"),
        ),
        _ => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!(
                    "webhook provider {provider:?} does not exist — use github, gitlab or generic"
                ),
            ));
        }
    };
    if !valid {
        let audit = hook_audit(
            &app,
            &provider,
            "auth.denied",
            json!({"reason": "the webhook signature does not match", "provider": provider}),
            &client,
        );
        state.store.record_audit(&audit).await?;
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "the webhook signature does not match — set the secret from `hanzo webhook APP` in the repository's webhook settings",
        ));
    }

    // 2. Only pushes to the configured branch deploy.
    let payload: Value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "the webhook body is not JSON ({e}) — send the push event as application/json"
        ))
    })?;
    let event = match provider.as_str() {
        "github" => header(&headers, "x-github-event").unwrap_or(""),
        "gitlab" => header(&headers, "x-gitlab-event").unwrap_or(""),
        _ => "push",
    };
    if !matches!(event, "push" | "Push Hook") {
        return Ok(ignored(format!(
            "event {event:?} is not a push; only pushes deploy"
        )));
    }
    let git_ref = payload["ref"].as_str().unwrap_or("");
    let Some(branch) = git_ref.strip_prefix("refs/heads/") else {
        return Ok(ignored(format!(
            "{git_ref:?} is not a branch; tags do not deploy"
        )));
    };
    if branch != app.branch {
        return Ok(ignored(format!(
            "push to {branch}; {} deploys from {}",
            app.name, app.branch
        )));
    }
    if payload["deleted"].as_bool() == Some(true) {
        return Ok(ignored("the branch was deleted"));
    }

    // 3. Once per delivery.
    let delivery = delivery.map(str::to_string).unwrap_or_else(|| {
        let after = payload["after"]
            .as_str()
            .or_else(|| payload["checkout_sha"].as_str())
            .unwrap_or("");
        format!("{}:{after}", app.id)
    });
    // Delivery ids of the generic webhook are the sender's: scope them per application.
    let delivery_key = format!("{}:{delivery}", app.id);
    if !state
        .store
        .record_delivery(&provider, &delivery_key)
        .await?
    {
        return Ok(ignored("this delivery was already processed"));
    }

    let pusher = payload["pusher"]["name"]
        .as_str()
        .or_else(|| payload["user_username"].as_str())
        .unwrap_or("unknown");
    let email = payload["pusher"]["email"]
        .as_str()
        .or_else(|| payload["user_email"].as_str())
        .unwrap_or("");
    let deployed_by = format!("{provider}:{pusher}");
    let mut audit = hook_audit(
        &app,
        &provider,
        "deploy",
        json!({"branch": branch, "delivery": delivery, "pusher": pusher, "via": "webhook"}),
        &client,
    );
    audit.user_id = deployed_by.clone();
    audit.user_email = email.to_string();
    let d = super::deployments::queue_git_build(&state, &app, branch, &deployed_by, &audit).await?;
    Ok((StatusCode::ACCEPTED, Json(d)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_signature_matches_the_documented_example() {
        // GitHub's documentation: secret "It's a Secret to Everybody", payload "Hello, World!".
        assert_eq!(
            signature("It's a Secret to Everybody", b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    #[test]
    fn secrets_differ_per_app_and_key() {
        let a = Uuid::new_v4();
        let b = Uuid::new_v4();
        assert_ne!(app_secret(b"k", a), app_secret(b"k", b));
        assert_ne!(app_secret(b"k1", a), app_secret(b"k2", a));
        assert_eq!(app_secret(b"k", a), app_secret(b"k", a));
    }
}
