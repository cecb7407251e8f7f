//! Organisations, members, users, API tokens and the audit log.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use hanzo_core::{Role, validate_name};
use hanzo_store::AuditQuery;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::ApiError;
use super::extract::{ApiJson, ApiPath, ApiQuery};
use crate::auth::{Action, Principal, authorize, new_token_secret, token_hash};
use crate::state::AppState;

pub async fn list_orgs(State(state): State<AppState>, p: Principal) -> Result<Response, ApiError> {
    let orgs: Vec<serde_json::Value> = if p.user.global_admin {
        state
            .store
            .list_orgs()
            .await?
            .into_iter()
            .map(|o| json!({"name": o, "role": "admin"}))
            .collect()
    } else {
        p.memberships
            .iter()
            .map(|m| json!({"name": m.org, "role": m.role}))
            .collect()
    };
    Ok(Json(orgs).into_response())
}

#[derive(Debug, Deserialize)]
pub struct CreateOrg {
    pub name: String,
}

pub async fn create_org(
    State(state): State<AppState>,
    p: Principal,
    ApiJson(body): ApiJson<CreateOrg>,
) -> Result<Response, ApiError> {
    if !p.user.global_admin {
        return Err(ApiError::forbidden(
            "only global admins create organisations — ask one",
        ));
    }
    validate_name("organisation name", &body.name)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    state.store.ensure_org(&body.name).await?;
    Ok((StatusCode::CREATED, Json(json!({"name": body.name}))).into_response())
}

pub async fn list_members(
    State(state): State<AppState>,
    p: Principal,
    ApiPath(org): ApiPath<String>,
) -> Result<Response, ApiError> {
    authorize(
        &state,
        &p,
        &org,
        Action::ManageMembers,
        &format!("organisation {org}"),
    )
    .await?;
    Ok(Json(state.store.org_members(&org).await?).into_response())
}

#[derive(Debug, Deserialize)]
pub struct SetMember {
    pub role: String,
    /// Email, used when the user does not exist yet.
    pub email: Option<String>,
}

pub async fn set_member(
    State(state): State<AppState>,
    p: Principal,
    ApiPath((org, user)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<SetMember>,
) -> Result<Response, ApiError> {
    authorize(
        &state,
        &p,
        &org,
        Action::ManageMembers,
        &format!("organisation {org}"),
    )
    .await?;
    validate_name("organisation name", &org).map_err(|e| ApiError::bad_request(e.to_string()))?;
    check_user_id(&user)?;
    if let Some(email) = &body.email {
        check_email(email)?;
    }
    let role: Role = body.role.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "role {:?} does not exist — use viewer, developer or admin",
            body.role
        ))
    })?;
    if state.store.get_user(&user).await.is_err() {
        let email = body
            .email
            .clone()
            .unwrap_or_else(|| format!("{user}@localhost"));
        state.store.upsert_user(&user, &email, false).await?;
    }
    state.store.ensure_org(&org).await?;
    state.store.set_membership(&user, &org, role).await?;
    state
        .store
        .record_audit(&p.audit(
            &org,
            None,
            "member.set",
            json!({"user": user, "role": role}),
        ))
        .await?;
    Ok(Json(json!({"user": user, "org": org, "role": role})).into_response())
}

pub async fn remove_member(
    State(state): State<AppState>,
    p: Principal,
    ApiPath((org, user)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    authorize(
        &state,
        &p,
        &org,
        Action::ManageMembers,
        &format!("organisation {org}"),
    )
    .await?;
    state.store.remove_membership(&user, &org).await?;
    state
        .store
        .record_audit(&p.audit(&org, None, "member.remove", json!({"user": user})))
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn check_user_id(id: &str) -> Result<(), ApiError> {
    if id.trim().is_empty() || id.len() > 128 || id.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "a user id is 1 to 128 printable characters — use the IAM user id",
        ));
    }
    Ok(())
}

fn check_email(email: &str) -> Result<(), ApiError> {
    let ok = email.len() <= 254
        && email
            .split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty())
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if !ok {
        return Err(ApiError::bad_request(format!(
            "{email:?} is not an email address — give one like name@example.com"
        )));
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateUser {
    pub id: String,
    pub email: String,
    #[serde(default, alias = "global_admin")]
    pub global_admin: bool,
}

pub async fn create_user(
    State(state): State<AppState>,
    p: Principal,
    ApiJson(body): ApiJson<CreateUser>,
) -> Result<Response, ApiError> {
    if !p.user.global_admin {
        return Err(ApiError::forbidden(
            "only global admins create users — ask one",
        ));
    }
    check_user_id(&body.id)?;
    check_email(&body.email)?;
    if state.store.get_user(&body.id).await.is_ok() {
        return Err(ApiError::conflict(format!(
            "user {} already exists — pick another id, or give them a role with `hanzo orgs grant ORG USER ROLE`",
            body.id
        )));
    }
    let user = state
        .store
        .upsert_user(&body.id, &body.email, body.global_admin)
        .await?;
    Ok((StatusCode::CREATED, Json(user)).into_response())
}

pub async fn list_tokens(
    State(state): State<AppState>,
    p: Principal,
) -> Result<Response, ApiError> {
    Ok(Json(state.store.list_tokens(&p.user.id).await?).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateToken {
    pub name: String,
    /// Lifetime in days (default 90, at most 3650); 0 = never expires.
    #[serde(alias = "expires_in_days")]
    pub expires_in_days: Option<u32>,
    /// Global admins may create a token for another user.
    pub user: Option<String>,
}

pub async fn create_token(
    State(state): State<AppState>,
    p: Principal,
    ApiJson(body): ApiJson<CreateToken>,
) -> Result<Response, ApiError> {
    let user = match body.user {
        Some(u) if u != p.user.id => {
            if !p.user.global_admin {
                return Err(ApiError::forbidden(
                    "only global admins create tokens for other users",
                ));
            }
            state.store.get_user(&u).await?;
            u
        }
        _ => p.user.id.clone(),
    };
    let name = body.name.trim().to_string();
    if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "a token name is 1 to 100 printable characters — name it after where it is used, e.g. ci",
        ));
    }
    let days = body.expires_in_days.unwrap_or(90);
    if days > 3650 {
        return Err(ApiError::bad_request(
            "a token lives at most 3650 days — ask for fewer",
        ));
    }
    let expires_at = (days > 0).then(|| Utc::now() + chrono::Duration::days(i64::from(days)));
    let secret = new_token_secret();
    let token = state
        .store
        .create_token(&user, &name, &token_hash(&secret), expires_at)
        .await?;
    let mut v = serde_json::to_value(token).map_err(anyhow::Error::from)?;
    v["token"] = json!(secret);
    v["note"] = json!("this is the only time the token is shown — store it now");
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

pub async fn revoke_token(
    State(state): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let id: Uuid = id.parse().map_err(|_| ApiError::not_found("token"))?;
    state.store.revoke_token(&p.user.id, id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Deserialize)]
pub struct AuditParams {
    pub org: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub user: Option<String>,
    pub app: Option<String>,
    pub action: Option<String>,
    pub limit: Option<u32>,
    /// `json` (default) or `csv`.
    pub format: Option<String>,
}

pub async fn audit(
    State(state): State<AppState>,
    p: Principal,
    ApiQuery(q): ApiQuery<AuditParams>,
) -> Result<Response, ApiError> {
    let orgs = match &q.org {
        Some(org) => {
            authorize(
                &state,
                &p,
                org,
                Action::ReadAudit,
                &format!("organisation {org}"),
            )
            .await?;
            Some(vec![org.clone()])
        }
        None if p.user.global_admin => None,
        None => {
            let admin_of: Vec<String> = p
                .memberships
                .iter()
                .filter(|m| m.role == Role::Admin)
                .map(|m| m.org.clone())
                .collect();
            if admin_of.is_empty() {
                return Err(ApiError::forbidden(
                    "reading the audit log needs the admin role in an organisation — ask an admin of yours for it",
                ));
            }
            Some(admin_of)
        }
    };
    let rows = state
        .store
        .query_audit(&AuditQuery {
            orgs,
            since: q.since,
            until: q.until,
            user_id: q.user.clone(),
            app: q.app.clone(),
            action: q.action.clone(),
            limit: Some(q.limit.unwrap_or(1000).min(100_000)),
        })
        .await?;
    match q.format.as_deref() {
        None | Some("json") => Ok(Json(rows).into_response()),
        Some("csv") => {
            let mut out = String::from(
                "id,timestamp,user_id,user_email,org,app,action,details,ip_address,user_agent\n",
            );
            for r in rows {
                let fields = [
                    r.id.to_string(),
                    r.timestamp.to_rfc3339(),
                    r.user_id,
                    r.user_email,
                    r.org,
                    r.app.unwrap_or_default(),
                    r.action,
                    r.details.to_string(),
                    r.ip_address.unwrap_or_default(),
                    r.user_agent.unwrap_or_default(),
                ];
                let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
                out.push_str(&line.join(","));
                out.push('\n');
            }
            Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], out).into_response())
        }
        Some(other) => Err(ApiError::bad_request(format!(
            "format {other:?} is not offered — use json or csv"
        ))),
    }
}

/// RFC 4180 quoting, and a leading quote against spreadsheet formula injection.
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn csv_quoting() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=SUM(A1)"), "'=SUM(A1)");
    }
}
