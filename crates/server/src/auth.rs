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
        let audit = p.audit(
            org,
            None,
            "auth.denied",
            serde_json::json!({"action": format!("{action:?}"), "target": what}),
        );
        if let Err(e) = state.store.record_audit(&audit).await {
            tracing::warn!("cannot record a refused request in the audit log: {e}");
        }
    }
    decision
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
