//! Who is asking, and may they. Every API request is made by a [`Principal`]
//! (the user behind an API token); [`authorize`] is the one place that decides.

use hanzo_core::{Membership, NewAudit, Role, User};
use sha2::{Digest, Sha256};

use crate::api::ApiError;
use crate::state::AppState;

/// What a request wants to do, with the least role that may do it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Read,
    Deploy,
    Rollback,
    Scale,
    Env,
    Domains,
    CreateApp,
    DeleteApp,
    ManageMembers,
    ReadAudit,
}

impl Action {
    pub fn least_role(self) -> Role {
        match self {
            Action::Read => Role::Viewer,
            Action::Deploy | Action::Rollback | Action::Scale | Action::Env | Action::Domains => {
                Role::Developer
            }
            Action::CreateApp | Action::DeleteApp | Action::ManageMembers | Action::ReadAudit => {
                Role::Admin
            }
        }
    }

    /// The name recorded in `auth.denied` audit rows; the audited actions use the spec's words.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Deploy => "deploy",
            Action::Rollback => "rollback",
            Action::Scale => "scale",
            Action::Env => "env",
            Action::Domains => "domains",
            Action::CreateApp => "app.create",
            Action::DeleteApp => "app.delete",
            Action::ManageMembers => "members",
            Action::ReadAudit => "audit.read",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Principal {
    pub user: User,
    pub memberships: Vec<Membership>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl Principal {
    pub fn role_in(&self, org: &str) -> Option<Role> {
        if self.user.global_admin {
            return Some(Role::Admin);
        }
        self.memberships
            .iter()
            .find(|m| m.org == org)
            .map(|m| m.role)
    }

    /// Organisations whose applications this principal may see; `None` = all.
    pub fn visible_orgs(&self) -> Option<Vec<String>> {
        if self.user.global_admin {
            None
        } else {
            Some(self.memberships.iter().map(|m| m.org.clone()).collect())
        }
    }

    pub fn audit(
        &self,
        org: &str,
        app: Option<&str>,
        action: &str,
        details: serde_json::Value,
    ) -> NewAudit {
        NewAudit {
            user_id: self.user.id.clone(),
            user_email: self.user.email.clone(),
            org: org.to_string(),
            app: app.map(str::to_string),
            action: action.to_string(),
            details,
            ip_address: self.ip.clone(),
            user_agent: self.user_agent.clone(),
        }
    }
}

/// Decides whether `p` may do `action` in `org`, and records a refusal in the
/// audit log of that organisation. Outside one's organisations the answer is
/// "not found", so names of other tenants never leak.
pub async fn authorize(
    state: &AppState,
    p: &Principal,
    org: &str,
    action: Action,
    what: &str,
) -> Result<(), ApiError> {
    let decision = decide(p, org, action, what);
    if decision.is_err() {
        record_denial(state, p, org, None, action, what).await;
    }
    decision
}

/// Writes an `auth.denied` row: who tried what on which target. A failure to
/// write it is logged, never shown to the caller (who is refused anyway).
pub async fn record_denial(
    state: &AppState,
    p: &Principal,
    org: &str,
    app: Option<&str>,
    action: Action,
    what: &str,
) {
    let audit = p.audit(
        org,
        app,
        "auth.denied",
        serde_json::json!({
            "action": action.as_str(),
            "target": what,
            "role": p.role_in(org).map(Role::as_str),
            "needs": action.least_role().as_str(),
        }),
    );
    if let Err(e) = state.store.record_audit(&audit).await {
        tracing::warn!("cannot record a refused request in the audit log: {e}");
    }
}

/// The decision alone: pure, for tests and for callers that only ask.
pub fn decide(p: &Principal, org: &str, action: Action, what: &str) -> Result<(), ApiError> {
    match p.role_in(org) {
        None => Err(ApiError::not_found(what)),
        Some(role) if role.at_least(action.least_role()) => Ok(()),
        Some(role) => Err(ApiError::forbidden(format!(
            "your role in {org} is {role}; this needs {} — ask an admin of {org} for it",
            action.least_role()
        ))),
    }
}

/// Tokens look like `hz_<64 hex>`; the store keeps only their SHA-256.
pub fn new_token_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("hz_{}", hex::encode(bytes))
}

pub fn token_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(global_admin: bool, roles: &[(&str, Role)]) -> Principal {
        Principal {
            user: User {
                id: "u".into(),
                email: "u@example.com".into(),
                global_admin,
                created_at: chrono::Utc::now(),
            },
            memberships: roles
                .iter()
                .map(|(org, role)| Membership {
                    user_id: "u".into(),
                    org: (*org).into(),
                    role: *role,
                })
                .collect(),
            ip: None,
            user_agent: None,
        }
    }

    const ALL: [Action; 10] = [
        Action::Read,
        Action::Deploy,
        Action::Rollback,
        Action::Scale,
        Action::Env,
        Action::Domains,
        Action::CreateApp,
        Action::DeleteApp,
        Action::ManageMembers,
        Action::ReadAudit,
    ];

    #[test]
    fn roles_grant_their_actions_and_outsiders_see_nothing() {
        use axum::http::StatusCode;
        for action in ALL {
            for role in Role::ALL {
                let p = principal(false, &[("a", *role)]);
                let own = decide(&p, "a", action, "x");
                if role.at_least(action.least_role()) {
                    assert!(own.is_ok(), "{role} may {action:?}");
                } else {
                    assert_eq!(own.unwrap_err().status, StatusCode::FORBIDDEN);
                }
                let other = decide(&p, "b", action, "x").unwrap_err();
                assert_eq!(other.status, StatusCode::NOT_FOUND);
            }
            assert!(decide(&principal(true, &[]), "b", action, "x").is_ok());
        }
    }

    #[test]
    fn token_hashes_are_sha256_hex() {
        let s = new_token_secret();
        assert!(s.starts_with("hz_") && s.len() == 67);
        assert_eq!(token_hash(&s).len(), 64);
        assert_ne!(token_hash(&s), s);
    }
}
