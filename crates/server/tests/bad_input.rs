//! Malformed requests get a 4xx with a JSON error naming the cause and the fix,
//! never a 5xx: bad JSON, wrong content types, huge numbers, NUL characters,
//! odd path parameters and query strings. On every backend (PostgreSQL is the
//! stricter one: it cannot store NUL).

mod support;

use hanzo_core::Role;
use reqwest::Method;
use serde_json::{Value, json};
use support::{TestServer, backends};

#[tokio::test]
async fn malformed_requests_are_client_errors() {
    for backend in backends() {
        malformed_on(backend).await;
    }
}

async fn malformed_on(backend: &'static str) {
    let s = TestServer::start(backend).await;
    s.app("acme", "web").await;
    let root = s.user("root", true, &[("acme", Role::Admin)]).await;

    let raw = |method: Method, path: &str, ctype: Option<&str>, body: &str| {
        let mut req = s
            .client()
            .request(method.clone(), format!("{}{path}", s.url))
            .bearer_auth(&root)
            .body(body.to_string());
        if let Some(c) = ctype {
            req = req.header("content-type", c);
        }
        (method, path.to_string(), req)
    };
    let json = Some("application/json");
    let cases = vec![
        (raw(Method::POST, "/api/v1/apps", json, "{"), 400),
        (raw(Method::POST, "/api/v1/apps", json, "[1,2]"), 422),
        (raw(Method::POST, "/api/v1/apps", json, ""), 400),
        (
            raw(Method::POST, "/api/v1/apps", Some("text/plain"), "{}"),
            415,
        ),
        (
            raw(
                Method::POST,
                "/api/v1/apps",
                None,
                r#"{"name":"x","repo":"r"}"#,
            ),
            415,
        ),
        (
            raw(
                Method::POST,
                "/api/v1/apps",
                json,
                r#"{"name":"x\u0000","org":"acme","repo":"r"}"#,
            ),
            400,
        ),
        (
            raw(
                Method::POST,
                "/api/v1/apps",
                json,
                r#"{"name":"UPPER","org":"acme","repo":"r"}"#,
            ),
            400,
        ),
        (
            raw(
                Method::POST,
                "/api/v1/apps",
                json,
                r#"{"name":"ok","org":"acme","repo":"r","runtime":"cobol"}"#,
            ),
            400,
        ),
        (
            raw(
                Method::POST,
                "/api/v1/apps",
                json,
                r#"{"name":"ok","org":"acme","repo":"r","branch":"a..b"}"#,
            ),
            400,
        ),
        (
            raw(
                Method::POST,
                "/api/v1/apps",
                json,
                r#"{"name":"ok","org":"acme","repo":"-oProxyCommand=x"}"#,
            ),
            400,
        ),
        (
            raw(
                Method::POST,
                "/api/v1/apps/web/scale",
                json,
                r#"{"instances":99999999999999999999}"#,
            ),
            422,
        ),
        (
            raw(
                Method::POST,
                "/api/v1/apps/web/scale",
                json,
                r#"{"instances":-1}"#,
            ),
            422,
        ),
        (
            raw(
                Method::POST,
                "/api/v1/apps/web/scale",
                json,
                r#"{"instances":1.5}"#,
            ),
            422,
        ),
        (
            raw(
                Method::POST,
                "/api/v1/apps/web/scale",
                json,
                r#"{"instances":"3"}"#,
            ),
            422,
        ),
        (
            raw(Method::POST, "/api/v1/apps/web/deploy", json, "not json"),
            400,
        ),
        (
            raw(
                Method::POST,
                "/api/v1/apps/web/deploy",
                json,
                r#"{"image":"bad image name"}"#,
            ),
            400,
        ),
        (
            raw(
                Method::POST,
                "/api/v1/apps/web/rollback",
                Some("text/plain"),
                "x",
            ),
            415,
        ),
        (
            raw(
                Method::PUT,
                "/api/v1/apps/web/env/K",
                json,
                r#"{"value":"a\u0000b"}"#,
            ),
            400,
        ),
        (
            raw(
                Method::PUT,
                "/api/v1/apps/web/env/1BAD",
                json,
                r#"{"value":"x"}"#,
            ),
            400,
        ),
        (
            raw(
                Method::PUT,
                "/api/v1/apps/web/env/K",
                json,
                r#"{"secret":true}"#,
            ),
            400,
        ),
        (
            raw(Method::PUT, "/api/v1/apps/web/env/K", json, r#"{}"#),
            400,
        ),
        (
            raw(
                Method::POST,
                "/api/v1/apps/web/domains",
                json,
                r#"{"domain":"not a domain"}"#,
            ),
            400,
        ),
        (
            raw(
                Method::POST,
                "/api/v1/apps/web/domains",
                json,
                r#"{"domain":""}"#,
            ),
            400,
        ),
        (
            raw(
                Method::GET,
                "/api/v1/apps/web/deployments?limit=99999999999",
                None,
                "",
            ),
            400,
        ),
        (
            raw(
                Method::GET,
                "/api/v1/apps/web/deployments?limit=-1",
                None,
                "",
            ),
            400,
        ),
        (raw(Method::GET, "/api/v1/apps%00x", None, ""), 400),
        (raw(Method::GET, "/api/v1/apps/web%00", None, ""), 400),
        (
            raw(Method::GET, "/api/v1/apps/web?org=acme%00", None, ""),
            400,
        ),
        (raw(Method::GET, "/api/v1/audit?user=a%00", None, ""), 400),
        (raw(Method::GET, "/api/v1/audit?limit=1e99", None, ""), 400),
        (
            raw(Method::GET, "/api/v1/audit?since=2024-13-45", None, ""),
            400,
        ),
        (raw(Method::GET, "/api/v1/apps/%F0%9F%92%A5", None, ""), 404),
        (
            raw(
                Method::GET,
                &format!("/api/v1/apps/{}", "a".repeat(5000)),
                None,
                "",
            ),
            404,
        ),
        (
            raw(
                Method::DELETE,
                "/api/v1/apps/web/domains/%E2%98%83.example.com",
                None,
                "",
            ),
            404,
        ),
        (
            raw(Method::GET, "/api/v1/deployments/not-a-uuid", None, ""),
            404,
        ),
        (
            raw(
                Method::GET,
                "/api/v1/deployments/00000000-0000-0000-0000-000000000000/logs?after=99999999999999999999",
                None,
                "",
            ),
            400,
        ),
        (
            raw(
                Method::GET,
                "/api/v1/deployments/00000000-0000-0000-0000-000000000000/logs?wait=-5",
                None,
                "",
            ),
            400,
        ),
        (
            raw(
                Method::POST,
                "/api/v1/orgs",
                json,
                r#"{"name":"Has Spaces"}"#,
            ),
            400,
        ),
        (
            raw(
                Method::PUT,
                "/api/v1/orgs/acme/members/x",
                json,
                r#"{"role":"owner"}"#,
            ),
            400,
        ),
        (
            raw(
                Method::PUT,
                "/api/v1/orgs/acme/members/x",
                json,
                r#"{"role":"viewer","email":"nope"}"#,
            ),
            400,
        ),
        (
            raw(
                Method::PUT,
                "/api/v1/orgs/NOT_AN_ORG/members/x",
                json,
                r#"{"role":"viewer"}"#,
            ),
            400,
        ),
        (
            raw(
                Method::POST,
                "/api/v1/users",
                json,
                r#"{"id":"","email":"a@b"}"#,
            ),
            400,
        ),
        (
            raw(
                Method::POST,
                "/api/v1/users",
                json,
                r#"{"id":"root","email":"a@b"}"#,
            ),
            409,
        ),
        (
            raw(
                Method::POST,
                "/api/v1/tokens",
                json,
                r#"{"name":"t","expiresInDays":4294967296}"#,
            ),
            422,
        ),
        (
            raw(Method::POST, "/api/v1/hooks/github/not-a-uuid", json, "{}"),
            404,
        ),
    ];
    let too_big = "x".repeat(3 * 1024 * 1024);
    let mut cases = cases;
    cases.push((
        raw(
            Method::PUT,
            "/api/v1/apps/web/env/K",
            json,
            &format!(r#"{{"value":"{too_big}"}}"#),
        ),
        413,
    ));
    for ((method, path, req), want) in cases {
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        let short: String = path.chars().take(80).collect();
        assert_eq!(status, want, "{backend}: {method} {short}: {body}");
        let error = body["error"].as_str().unwrap_or_else(|| {
            panic!("{backend}: {method} {short}: the error is not JSON: {body}")
        });
        assert!(
            error.contains(" — ") || error.contains(" - ") || error.contains("; "),
            "{method} {short}: the error does not name a fix: {error}"
        );
    }

    // Nothing above changed anything.
    let (st, apps) = s.call(&root, Method::GET, "/api/v1/apps", None).await;
    assert_eq!(st, 200);
    assert_eq!(apps.as_array().map(Vec::len), Some(1));
    let user = s.store().get_user("root").await.expect("root");
    assert!(
        user.global_admin,
        "creating an existing user must not change it"
    );
    let _ = json!({});
}

#[tokio::test]
async fn only_global_admins_build_from_the_servers_disk() {
    let s = TestServer::start("sqlite").await;
    let admin = s.user("boss", false, &[("acme", Role::Admin)]).await;
    let root = s.user("root", true, &[]).await;
    let body = |name: &str, repo: &str| Some(json!({"name": name, "org": "acme", "repo": repo}));
    let (st, v) = s
        .call(&admin, Method::POST, "/api/v1/apps", body("a", "/etc"))
        .await;
    assert_eq!(st, 403, "{v}");
    for (name, repo) in [
        ("b", "https://git.example.com/b.git"),
        ("c", "git@git.example.com:acme/c.git"),
        ("d", "ssh://git@git.example.com/d.git"),
    ] {
        let (st, v) = s
            .call(&admin, Method::POST, "/api/v1/apps", body(name, repo))
            .await;
        assert_eq!(st, 201, "{repo}: {v}");
    }
    let (st, v) = s
        .call(
            &root,
            Method::POST,
            "/api/v1/apps",
            body("e", "/srv/repos/e"),
        )
        .await;
    assert_eq!(st, 201, "{v}");
}
