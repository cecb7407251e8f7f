//! API tokens: shown once, stored hashed, revocable, with an expiry. On every backend.

mod support;

use hanzo_core::Role;
use hanzo_server::auth::{new_token_secret, token_hash};
use reqwest::Method;
use serde_json::json;
use support::{TestServer, backends};

/// Everything the database holds, as text (to look for a plaintext secret).
fn database_text(s: &TestServer) -> String {
    let url = &s.state.config.database_url;
    if let Some(path) = url.strip_prefix("sqlite://") {
        let mut text = String::new();
        for suffix in ["", "-wal"] {
            if let Ok(bytes) = std::fs::read(format!("{path}{suffix}")) {
                text.push_str(&String::from_utf8_lossy(&bytes));
            }
        }
        text
    } else {
        let out = std::process::Command::new("psql")
            .arg(url)
            .arg("-qAtc")
            .arg("SELECT row_to_json(t)::text FROM api_tokens t")
            .output()
            .expect("psql");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

#[tokio::test]
async fn tokens() {
    for backend in backends() {
        tokens_on(backend).await;
    }
}

async fn tokens_on(backend: &'static str) {
    let s = TestServer::start(backend).await;
    let me = s.user("dev", false, &[("acme", Role::Developer)]).await;

    // Created: the secret is in this answer only.
    let (st, t) = s
        .call(
            &me,
            Method::POST,
            "/api/v1/tokens",
            Some(json!({"name": "ci", "expiresInDays": 30})),
        )
        .await;
    assert_eq!(st, 201, "{t}");
    let secret = t["token"].as_str().expect("secret").to_string();
    assert!(secret.starts_with("hz_"));
    let id = t["id"].as_str().expect("id").to_string();
    let expires = chrono::DateTime::parse_from_rfc3339(t["expiresAt"].as_str().expect("expiry"))
        .expect("time");
    let days = (expires.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_hours();
    assert!((29 * 24..=30 * 24).contains(&days), "{days} hours");

    let (st, who) = s.call(&secret, Method::GET, "/api/v1/whoami", None).await;
    assert_eq!(st, 200);
    assert_eq!(who["user"]["id"], "dev");

    // Listed without the secret; stored as its hash only.
    let (st, list) = s.call(&me, Method::GET, "/api/v1/tokens", None).await;
    assert_eq!(st, 200);
    assert!(!list.to_string().contains(&secret), "{list}");
    assert!(
        list.as_array()
            .is_some_and(|l| l.iter().any(|x| x["id"] == id.as_str()))
    );
    let db = database_text(&s);
    assert!(
        !db.contains(&secret),
        "{backend}: the secret is stored in the clear"
    );
    if backend == "postgres" {
        assert!(
            db.contains(&token_hash(&secret)),
            "the hash is what is stored"
        );
    }

    // Never-expiring and too-long lifetimes; the snake_case spelling is accepted too.
    let (st, t) = s
        .call(
            &me,
            Method::POST,
            "/api/v1/tokens",
            Some(json!({"name": "forever", "expires_in_days": 0})),
        )
        .await;
    assert_eq!(st, 201, "{t}");
    assert!(t["expiresAt"].is_null());
    let (st, _) = s
        .call(
            &me,
            Method::POST,
            "/api/v1/tokens",
            Some(json!({"name": "x", "expiresInDays": 3651})),
        )
        .await;
    assert_eq!(st, 400);
    let (st, _) = s
        .call(
            &me,
            Method::POST,
            "/api/v1/tokens",
            Some(json!({"name": "  "})),
        )
        .await;
    assert_eq!(st, 400);

    // Tokens for someone else: global admins only.
    let (st, _) = s
        .call(
            &me,
            Method::POST,
            "/api/v1/tokens",
            Some(json!({"name": "x", "user": "root"})),
        )
        .await;
    assert_eq!(st, 403);
    let root = s.user("root", true, &[]).await;
    let (st, t) = s
        .call(
            &root,
            Method::POST,
            "/api/v1/tokens",
            Some(json!({"name": "for-dev", "user": "dev"})),
        )
        .await;
    assert_eq!(st, 201, "{t}");
    assert_eq!(t["userId"], "dev");

    // Revoked: refused from then on; someone else's token cannot be revoked.
    let (st, _) = s
        .call(&root, Method::DELETE, &format!("/api/v1/tokens/{id}"), None)
        .await;
    assert_eq!(st, 404, "only the owner revokes");
    let (st, _) = s
        .call(&me, Method::DELETE, &format!("/api/v1/tokens/{id}"), None)
        .await;
    assert_eq!(st, 204);
    let (st, v) = s.call(&secret, Method::GET, "/api/v1/whoami", None).await;
    assert_eq!(st, 401, "{v}");
    assert!(v["error"].as_str().unwrap_or("").contains("revoked"), "{v}");
    let (st, list) = s.call(&me, Method::GET, "/api/v1/tokens", None).await;
    assert_eq!(st, 200);
    let revoked = list
        .as_array()
        .and_then(|l| l.iter().find(|x| x["id"] == id.as_str()).cloned())
        .expect("still listed");
    assert!(revoked["revokedAt"].is_string(), "{revoked}");
    let (st, _) = s
        .call(
            &me,
            Method::DELETE,
            &format!("/api/v1/tokens/{}", uuid::Uuid::new_v4()),
            None,
        )
        .await;
    assert_eq!(st, 404);
    let (st, _) = s
        .call(&me, Method::DELETE, "/api/v1/tokens/not-a-uuid", None)
        .await;
    assert_eq!(st, 404);

    // Expired: refused.
    let old = new_token_secret();
    s.store()
        .create_token(
            "dev",
            "old",
            &token_hash(&old),
            Some(chrono::Utc::now() - chrono::Duration::minutes(1)),
        )
        .await
        .expect("token");
    let (st, v) = s.call(&old, Method::GET, "/api/v1/whoami", None).await;
    assert_eq!(st, 401, "{v}");

    // No token, a malformed header, an unknown token.
    for auth in [None, Some("Basic abc"), Some("Bearer hz_nope")] {
        let mut req = s.client().get(format!("{}/api/v1/apps", s.url));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let (st, v) = s.request(Method::GET, "/api/v1/apps", req).await;
        assert_eq!(st, 401, "{auth:?}: {v}");
        assert!(
            v["error"]
                .as_str()
                .is_some_and(|e| e.contains("hanzo login") || e.contains("Bearer"))
        );
    }
}
