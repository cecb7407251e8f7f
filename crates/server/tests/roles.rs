//! The whole role × action × own/other-organisation matrix, on every backend.
//!
//! Allowed: role ≥ the action's least role (viewer: read; developer: + deploy,
//! rollback, scale, env, domains; admin: + create/delete app, members, audit),
//! or global admin. Allowed answers may be a domain error (409 nothing to roll
//! back, 503 Docker down) but never 401/403/404. A smaller role gets 403.
//! Without membership the answer is 404, worded exactly as for an application
//! that does not exist, and it names nothing the caller did not type.

mod support;

use hanzo_core::Role;
use reqwest::Method;
use serde_json::{Value, json};
use support::{TestServer, backends};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Act {
    ReadApp,
    ListDeployments,
    Deploy,
    Rollback,
    Scale,
    EnvSet,
    EnvUnset,
    DomainAdd,
    DomainRemove,
    CreateApp,
    DeleteApp,
    ManageMembers,
    ReadAudit,
}

const ACTS: [Act; 13] = [
    Act::ReadApp,
    Act::ListDeployments,
    Act::Deploy,
    Act::Rollback,
    Act::Scale,
    Act::EnvSet,
    Act::EnvUnset,
    Act::DomainAdd,
    Act::DomainRemove,
    Act::CreateApp,
    Act::DeleteApp,
    Act::ManageMembers,
    Act::ReadAudit,
];

impl Act {
    fn least(self) -> Role {
        match self {
            Act::ReadApp | Act::ListDeployments => Role::Viewer,
            Act::Deploy
            | Act::Rollback
            | Act::Scale
            | Act::EnvSet
            | Act::EnvUnset
            | Act::DomainAdd
            | Act::DomainRemove => Role::Developer,
            Act::CreateApp | Act::DeleteApp | Act::ManageMembers | Act::ReadAudit => Role::Admin,
        }
    }
}

/// Who asks.
#[derive(Debug, Clone, Copy)]
enum Who {
    Member(Role),
    GlobalAdmin,
}

struct Fixture {
    /// The long-lived application of each org, acted on by most actions.
    app_of: [(&'static str, &'static str); 2],
}

const ORG_A: &str = "acme";
const ORG_B: &str = "bravo";

/// Prepares what the action needs in `org` and returns (method, path, body, the app name in play).
async fn request_for(
    server: &TestServer,
    fx: &Fixture,
    act: Act,
    org: &str,
    case: usize,
) -> (Method, String, Option<Value>, Option<String>) {
    let app = fx
        .app_of
        .iter()
        .find(|(o, _)| *o == org)
        .map(|(_, a)| a.to_string())
        .expect("app");
    let store = server.store();
    let a = store.get_app(org, &app).await.expect("app");
    match act {
        Act::ReadApp => (Method::GET, format!("/api/v1/apps/{app}"), None, Some(app)),
        Act::ListDeployments => (
            Method::GET,
            format!("/api/v1/apps/{app}/deployments"),
            None,
            Some(app),
        ),
        Act::Deploy => (
            Method::POST,
            format!("/api/v1/apps/{app}/deploy"),
            Some(json!({})),
            Some(app),
        ),
        Act::Rollback => (
            Method::POST,
            format!("/api/v1/apps/{app}/rollback"),
            Some(json!({})),
            Some(app),
        ),
        Act::Scale => (
            Method::POST,
            format!("/api/v1/apps/{app}/scale"),
            Some(json!({"instances": 2})),
            Some(app),
        ),
        Act::EnvSet => (
            Method::PUT,
            format!("/api/v1/apps/{app}/env/KEY_{case}"),
            Some(json!({"value": "v"})),
            Some(app),
        ),
        Act::EnvUnset => {
            let key = format!("GONE_{case}");
            store
                .set_env(
                    a.id,
                    &hanzo_core::EnvVar {
                        name: key.clone(),
                        value: "x".into(),
                    },
                    None,
                )
                .await
                .expect("env");
            (
                Method::DELETE,
                format!("/api/v1/apps/{app}/env/{key}"),
                None,
                Some(app),
            )
        }
        Act::DomainAdd => (
            Method::POST,
            format!("/api/v1/apps/{app}/domains"),
            Some(json!({"domain": format!("add{case}.{org}.example.com")})),
            Some(app),
        ),
        Act::DomainRemove => {
            let d = format!("rm{case}.{org}.example.com");
            store.add_domain(a.id, &d, None).await.expect("domain");
            (
                Method::DELETE,
                format!("/api/v1/apps/{app}/domains/{d}"),
                None,
                Some(app),
            )
        }
        Act::CreateApp => (
            Method::POST,
            "/api/v1/apps".into(),
            Some(
                json!({"name": format!("new{case}"), "org": org, "repo": "https://git.example.com/n.git"}),
            ),
            None,
        ),
        Act::DeleteApp => {
            let doomed = format!("doomed{case}");
            server.app(org, &doomed).await;
            (
                Method::DELETE,
                format!("/api/v1/apps/{doomed}"),
                None,
                Some(doomed),
            )
        }
        Act::ManageMembers => (
            Method::PUT,
            format!("/api/v1/orgs/{org}/members/invitee{case}"),
            Some(json!({"role": "viewer"})),
            None,
        ),
        Act::ReadAudit => (Method::GET, format!("/api/v1/audit?org={org}"), None, None),
    }
}

#[tokio::test]
async fn role_matrix() {
    for backend in backends() {
        role_matrix_on(backend).await;
    }
}

async fn role_matrix_on(backend: &'static str) {
    let server = TestServer::start(backend).await;
    let fx = Fixture {
        app_of: [(ORG_A, "alpha-web"), (ORG_B, "bravo-web")],
    };
    for (org, app) in fx.app_of {
        server.app(org, app).await;
    }
    let mut callers: Vec<(Who, String)> = Vec::new();
    for role in Role::ALL {
        let token = server
            .user(&format!("{role}-of-acme"), false, &[(ORG_A, *role)])
            .await;
        callers.push((Who::Member(*role), token));
    }
    callers.push((Who::GlobalAdmin, server.user("root", true, &[]).await));

    let mut case = 0;
    let mut checked = 0;
    for act in ACTS {
        for (who, token) in &callers {
            for target_org in [ORG_A, ORG_B] {
                case += 1;
                let (method, path, body, app) =
                    request_for(&server, &fx, act, target_org, case).await;
                let (status, resp) = server
                    .call(token, method.clone(), &path, body.clone())
                    .await;
                let what = format!("{backend}: {who:?} {act:?} in {target_org} ({method} {path})");
                let allowed = match who {
                    Who::GlobalAdmin => true,
                    Who::Member(role) => target_org == ORG_A && role.at_least(act.least()),
                };
                if allowed {
                    assert!(
                        (200..300).contains(&status) || status == 409 || status == 503,
                        "{what}: expected allowed, got {status} {resp}"
                    );
                } else if target_org == ORG_A {
                    assert_eq!(status, 403, "{what}: {resp}");
                } else {
                    assert_eq!(status, 404, "{what}: {resp}");
                    // Nothing of the other organisation beyond what was typed.
                    let typed = format!("{path} {}", body.clone().unwrap_or(Value::Null));
                    let text = resp.to_string();
                    for secret in ["bravo-web"] {
                        if !typed.contains(secret) {
                            assert!(!text.contains(secret), "{what} leaks {secret}: {text}");
                        }
                    }
                    // Worded exactly as for a name that exists nowhere.
                    if let Some(app) = &app {
                        let ghost_path = path.replacen(app.as_str(), "ghost-app", 1);
                        let (ghost_status, ghost) = server
                            .call(token, method.clone(), &ghost_path, body.clone())
                            .await;
                        assert_eq!(ghost_status, 404, "{what}");
                        assert_eq!(
                            text.replace(app.as_str(), "ghost-app"),
                            ghost.to_string(),
                            "{what}: the answer differs from a missing application's"
                        );
                    }
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, ACTS.len() * 4 * 2);

    // A member of another organisation only sees nothing of acme in lists either.
    let outsider = server
        .user("outsider", false, &[(ORG_B, Role::Admin)])
        .await;
    let (status, list) = server
        .call(&outsider, Method::GET, "/api/v1/apps", None)
        .await;
    assert_eq!(status, 200);
    assert!(!list.to_string().contains("alpha-web"), "{list}");
    let (status, _) = server
        .call(&outsider, Method::GET, "/api/v1/apps?org=acme", None)
        .await;
    assert_eq!(status, 404);
}
