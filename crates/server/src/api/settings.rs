//! Per-application settings: environment variables and domains.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hanzo_core::EnvVar;
use serde::Deserialize;
use serde_json::json;

use super::ApiError;
use super::apps::{OrgQuery, resolve_app, resolve_app_for};
use super::extract::{ApiJson, ApiPath, ApiQuery};
use crate::auth::{Action, Principal};
use crate::state::AppState;

/// Environment variable names: letters, digits and `_`, not starting with a digit.
pub fn valid_env_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.as_bytes()[0].is_ascii_digit()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvView {
    pub name: String,
    pub value: String,
    pub secret: bool,
    pub source: &'static str,
}

/// Variables of the application: those set through the API, and the manifest's
/// (secrets masked, their values never leave KMS).
pub async fn list_env(
    State(state): State<AppState>,
    p: Principal,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<OrgQuery>,
) -> Result<Response, ApiError> {
    let app = resolve_app(&state, &p, &name, q.org.as_deref()).await?;
    let mut out: Vec<EnvView> = state
        .store
        .list_env(app.id)
        .await?
        .into_iter()
        .map(|v| EnvView {
            name: v.name,
            value: v.value,
            secret: false,
            source: "platform",
        })
        .collect();
    if let Some(cur) = app.current_deployment_id
        && let Ok(d) = state.store.get_deployment(cur).await
        && let Ok(m) = crate::reconciler::manifest_of(&d)
    {
        for e in m.env {
            if out.iter().any(|o| o.name == e.name) {
                continue;
            }
            let value = if e.secret {
                "********".to_string()
            } else {
                e.value.unwrap_or_default()
            };
            out.push(EnvView {
                name: e.name,
                value,
                secret: e.secret,
                source: "hanzo.yaml",
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Json(out).into_response())
}

#[derive(Debug, Deserialize)]
pub struct SetEnv {
    pub value: Option<String>,
    #[serde(default)]
    pub secret: bool,
}

pub async fn set_env(
    State(state): State<AppState>,
    p: Principal,
    ApiPath((name, key)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<OrgQuery>,
    ApiJson(body): ApiJson<SetEnv>,
) -> Result<Response, ApiError> {
    let app = resolve_app_for(&state, &p, &name, q.org.as_deref(), Action::Env).await?;
    if !valid_env_name(&key) {
        return Err(ApiError::bad_request(format!(
            "{key:?} is not a valid variable name — use letters, digits and _, not starting with a digit"
        )));
    }
    if body.secret {
        return Err(ApiError::bad_request(format!(
            "secret values are kept in KMS, never in the platform database, and this server has no KMS configured — store {key} in KMS and reference it in hanzo.yaml with `secret: true` and `kms_key`"
        )));
    }
    let value = body
        .value
        .ok_or_else(|| ApiError::bad_request("no value given — use KEY=value"))?;
    if value.len() > 64 * 1024 {
        return Err(ApiError::bad_request(
            "the value is longer than 64 KiB — store large data elsewhere",
        ));
    }
    let audit = p.audit(&app.org, Some(&app.name), "env.set", json!({"name": key}));
    state
        .store
        .set_env(
            app.id,
            &EnvVar {
                name: key.clone(),
                value,
            },
            Some(&audit),
        )
        .await?;
    Ok(Json(json!({"name": key, "applied": "to instances started from now on"})).into_response())
}

pub async fn delete_env(
    State(state): State<AppState>,
    p: Principal,
    ApiPath((name, key)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<OrgQuery>,
) -> Result<Response, ApiError> {
    let app = resolve_app_for(&state, &p, &name, q.org.as_deref(), Action::Env).await?;
    let audit = p.audit(
        &app.org,
        Some(&app.name),
        "env.delete",
        json!({"name": key}),
    );
    state
        .store
        .delete_env(app.id, &key, Some(&audit))
        .await
        .map_err(|e| match e {
            hanzo_store::StoreError::NotFound { .. } => ApiError::new(
                StatusCode::NOT_FOUND,
                format!("{name} has no variable {key} set through the platform — list them with `hanzo env {name}`"),
            ),
            other => other.into(),
        })?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn list_domains(
    State(state): State<AppState>,
    p: Principal,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<OrgQuery>,
) -> Result<Response, ApiError> {
    let app = resolve_app(&state, &p, &name, q.org.as_deref()).await?;
    Ok(Json(app.domains).into_response())
}

#[derive(Debug, Deserialize)]
pub struct AddDomain {
    pub domain: String,
}

/// Lowercase host name with optional path; internationalised names become punycode.
fn normalise_domain(raw: &str) -> Result<String, ApiError> {
    if raw.contains(',') || raw.split_whitespace().count() > 1 {
        return Err(ApiError::bad_request(format!(
            "{raw:?} is several domains — add them one at a time with `hanzo domains APP add DOMAIN`"
        )));
    }
    hanzo_manifest::parse_domain(raw)
        .map(|d| d.to_string())
        .map_err(|e| ApiError::bad_request(format!("{raw:?} is not a valid domain: {e}")))
}

pub async fn add_domain(
    State(state): State<AppState>,
    p: Principal,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<OrgQuery>,
    ApiJson(body): ApiJson<AddDomain>,
) -> Result<Response, ApiError> {
    let app = resolve_app_for(&state, &p, &name, q.org.as_deref(), Action::Domains).await?;
    let domain = normalise_domain(&body.domain)?;
    let audit = p.audit(
        &app.org,
        Some(&app.name),
        "domain.add",
        json!({"domain": domain}),
    );
    state
        .store
        .add_domain(app.id, &domain, Some(&audit))
        .await
        .map_err(|e| match e {
            hanzo_store::StoreError::Conflict { .. } => ApiError::conflict(format!(
                "{domain} is already routed to an application — remove it there first"
            )),
            other => other.into(),
        })?;
    state.reconcile.notify_one();
    Ok((StatusCode::CREATED, Json(json!({"domain": domain}))).into_response())
}

pub async fn remove_domain(
    State(state): State<AppState>,
    p: Principal,
    ApiPath((name, domain)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<OrgQuery>,
) -> Result<Response, ApiError> {
    let app = resolve_app_for(&state, &p, &name, q.org.as_deref(), Action::Domains).await?;
    let domain = normalise_domain(&domain).unwrap_or_else(|_| domain.to_ascii_lowercase());
    let audit = p.audit(
        &app.org,
        Some(&app.name),
        "domain.remove",
        json!({"domain": domain}),
    );
    state
        .store
        .remove_domain(app.id, &domain, Some(&audit))
        .await?;
    state.reconcile.notify_one();
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::valid_env_name;

    #[test]
    fn env_names() {
        assert!(valid_env_name("DATABASE_URL"));
        assert!(valid_env_name("_X1"));
        assert!(!valid_env_name("1X"));
        assert!(!valid_env_name("A-B"));
        assert!(!valid_env_name(""));
    }
}
