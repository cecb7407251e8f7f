//! Push webhooks: GitHub, GitLab and the generic signed webhook. A valid push to
//! the configured branch queues a deployment and is audited; a bad signature is
//! refused and audited; other branches, tags and other events are ignored with
//! a reason; a redelivery does not deploy twice. On every backend.

mod support;

use hanzo_core::Role;
use hanzo_server::api::webhooks::{app_secret, signature};
use reqwest::Method;
use serde_json::{Value, json};
use support::{TestServer, backends};

struct Hook<'a> {
    s: &'a TestServer,
    path: String,
}

impl Hook<'_> {
    async fn send(&self, headers: &[(&str, String)], body: &[u8]) -> (u16, Value) {
        let mut req = self
            .s
            .client()
            .post(format!("{}{}", self.s.url, self.path))
            .header("content-type", "application/json")
            .body(body.to_vec());
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        self.s.request(Method::POST, &self.path, req).await
    }
}

fn push(branch_ref: &str, after: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "ref": branch_ref,
        "after": after,
        "pusher": {"name": "octo", "email": "octo@example.com"},
    }))
    .expect("json")
}

async fn deployments(s: &TestServer, app: uuid::Uuid) -> usize {
    s.store()
        .list_deployments(app, 100)
        .await
        .expect("list")
        .len()
}

#[tokio::test]
async fn github() {
    for backend in backends() {
        let s = TestServer::start(backend).await;
        let app = s.app("acme", "web").await;
        let secret = app_secret(&s.state.webhook_key, app.id);
        let hook = Hook {
            s: &s,
            path: format!("/api/v1/hooks/github/{}", app.id),
        };
        let gh = |event: &str, delivery: &str, body: &[u8], secret: &str| {
            vec![
                ("x-github-event", event.to_string()),
                ("x-github-delivery", delivery.to_string()),
                ("x-hub-signature-256", signature(secret, body)),
            ]
        };

        // A push to the configured branch queues one deployment and is audited.
        let body = push(
            "refs/heads/main",
            "0123456789abcdef0123456789abcdef01234567",
        );
        let (st, d) = hook.send(&gh("push", "d-1", &body, &secret), &body).await;
        assert_eq!(st, 202, "{backend}: {d}");
        assert_eq!(d["status"], "queued");
        assert_eq!(d["source"], json!({"kind": "git", "branch": "main"}));
        assert_eq!(d["deployedBy"], "github:octo");
        let rows = s.audit_rows("deploy", Some("web")).await;
        assert_eq!(rows.len(), 1, "{rows:#?}");
        assert_eq!(rows[0].user_id, "github:octo");
        assert_eq!(rows[0].user_email, "octo@example.com");
        assert_eq!(rows[0].org, "acme");
        assert_eq!(rows[0].details["delivery"], "d-1");
        assert_eq!(rows[0].ip_address.as_deref(), Some("127.0.0.1"));

        // The same delivery again: no second deployment.
        let (st, v) = hook.send(&gh("push", "d-1", &body, &secret), &body).await;
        assert_eq!(st, 200, "{v}");
        assert!(
            v["ignored"]
                .as_str()
                .unwrap_or("")
                .contains("already processed"),
            "{v}"
        );
        assert_eq!(deployments(&s, app.id).await, 1);

        // A bad signature is refused and audited, and deploys nothing.
        let (st, v) = hook
            .send(&gh("push", "d-2", &body, "not the secret"), &body)
            .await;
        assert_eq!(st, 401, "{v}");
        assert!(
            v["error"].as_str().unwrap_or("").contains("signature"),
            "{v}"
        );
        let (st, _) = hook
            .send(
                &[
                    ("x-github-event", "push".into()),
                    ("x-github-delivery", "d-3".into()),
                ],
                &body,
            )
            .await;
        assert_eq!(st, 401, "no signature at all");
        let denied = s.audit_rows("auth.denied", Some("web")).await;
        assert_eq!(denied.len(), 2, "{denied:#?}");
        assert!(
            denied
                .iter()
                .all(|r| r.user_id == "webhook:github" && r.org == "acme")
        );
        // The body is signed, not just the header: a changed body fails.
        let forged = push(
            "refs/heads/main",
            "ffffffffffffffffffffffffffffffffffffffff",
        );
        let (st, _) = hook.send(&gh("push", "d-4", &body, &secret), &forged).await;
        assert_eq!(st, 401);
        assert_eq!(deployments(&s, app.id).await, 1);

        // Other branches, tags and other events are ignored with a reason.
        for (event, r, why) in [
            ("push", "refs/heads/feature/x", "deploys from main"),
            ("push", "refs/tags/v1.0.0", "tags do not deploy"),
            ("ping", "refs/heads/main", "not a push"),
        ] {
            let body = push(r, "1111111111111111111111111111111111111111");
            let (st, v) = hook
                .send(
                    &gh(event, &format!("other-{r}-{event}"), &body, &secret),
                    &body,
                )
                .await;
            assert_eq!(st, 200, "{event} {r}: {v}");
            assert!(
                v["ignored"].as_str().unwrap_or("").contains(why),
                "{event} {r}: {v}"
            );
        }
        assert_eq!(deployments(&s, app.id).await, 1);

        // Signed but not JSON: a clear 400.
        let junk = b"payload=%7B%7D".to_vec();
        let (st, v) = hook.send(&gh("push", "d-5", &junk, &secret), &junk).await;
        assert_eq!(st, 400, "{v}");

        // Unknown application or provider: 404.
        let other = Hook {
            s: &s,
            path: format!("/api/v1/hooks/github/{}", uuid::Uuid::new_v4()),
        };
        let (st, _) = other.send(&gh("push", "d-6", &body, &secret), &body).await;
        assert_eq!(st, 404);
        let bogus = Hook {
            s: &s,
            path: format!("/api/v1/hooks/bitbucket/{}", app.id),
        };
        let req = s
            .client()
            .post(format!("{}{}", s.url, bogus.path))
            .body(body.clone());
        let resp = req.send().await.expect("request");
        assert_eq!(resp.status(), 404);
    }
}

#[tokio::test]
async fn gitlab_and_generic() {
    for backend in backends() {
        let s = TestServer::start(backend).await;
        let web = s.app("acme", "web").await;
        let api = s.app("acme", "api").await;
        let secret = app_secret(&s.state.webhook_key, web.id);

        // GitLab: the token is the secret itself.
        let gl = Hook {
            s: &s,
            path: format!("/api/v1/hooks/gitlab/{}", web.id),
        };
        // GitLab's push event names the pusher in user_username and user_email.
        let body = serde_json::to_vec(&json!({
            "ref": "refs/heads/main",
            "checkout_sha": "2222222222222222222222222222222222222222",
            "user_username": "tanuki",
            "user_email": "tanuki@example.com",
        }))
        .expect("json");
        let headers = |token: &str, uuid: &str| {
            vec![
                ("x-gitlab-token", token.to_string()),
                ("x-gitlab-event", "Push Hook".to_string()),
                ("x-gitlab-event-uuid", uuid.to_string()),
            ]
        };
        let (st, d) = gl.send(&headers(&secret, "g-1"), &body).await;
        assert_eq!(st, 202, "{backend}: {d}");
        assert_eq!(d["deployedBy"], "gitlab:tanuki");
        let (st, _) = gl.send(&headers(&secret, "g-1"), &body).await;
        assert_eq!(st, 200, "redelivery");
        let (st, _) = gl.send(&headers("wrong", "g-2"), &body).await;
        assert_eq!(st, 401);
        let mut tag = headers(&secret, "g-3");
        tag[1].1 = "Tag Push Hook".into();
        let (st, v) = gl.send(&tag, &body).await;
        assert_eq!(st, 200, "{v}");
        assert!(v["ignored"].is_string());
        assert_eq!(deployments(&s, web.id).await, 1);

        // Generic: GitHub's signature scheme under our header names. Delivery
        // ids are the sender's, so they count per application.
        for app in [&web, &api] {
            let secret = app_secret(&s.state.webhook_key, app.id);
            let hook = Hook {
                s: &s,
                path: format!("/api/v1/hooks/generic/{}", app.id),
            };
            let h = vec![
                ("x-hanzo-signature-256", signature(&secret, &body)),
                ("x-hanzo-delivery", "build-42".to_string()),
            ];
            let (st, d) = hook.send(&h, &body).await;
            assert_eq!(st, 202, "{}: {d}", app.name);
            let (st, _) = hook.send(&h, &body).await;
            assert_eq!(st, 200, "redelivery");
            let bad = vec![("x-hanzo-signature-256", signature("nope", &body))];
            let (st, _) = hook.send(&bad, &body).await;
            assert_eq!(st, 401);
        }
        assert_eq!(deployments(&s, web.id).await, 2);
        assert_eq!(deployments(&s, api.id).await, 1);
        assert_eq!(s.audit_rows("auth.denied", None).await.len(), 3);
    }
}

#[tokio::test]
async fn webhook_settings_are_for_developers() {
    let s = TestServer::start("sqlite").await;
    let app = s.app("acme", "web").await;
    let dev = s.user("dev", false, &[("acme", Role::Developer)]).await;
    let viewer = s.user("viewer", false, &[("acme", Role::Viewer)]).await;
    let (st, v) = s
        .call(&dev, Method::GET, "/api/v1/apps/web/webhook", None)
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["github"], format!("/api/v1/hooks/github/{}", app.id));
    assert_eq!(v["secret"], app_secret(&s.state.webhook_key, app.id));
    assert_eq!(v["branch"], "main");
    let (st, _) = s
        .call(&viewer, Method::GET, "/api/v1/apps/web/webhook", None)
        .await;
    assert_eq!(st, 403);
}
