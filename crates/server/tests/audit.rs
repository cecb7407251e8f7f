//! The audit log: every audited action writes exactly one row with the spec's
//! fields, a failed change writes none, refusals are recorded, admins query and
//! export it, and rows older than a year are pruned. On every backend.

mod support;

use hanzo_core::{AuditEntry, DeploymentSource, DeploymentStatus, Role};
use hanzo_store::{AppPatch, DeploymentPatch, NewDeployment};
use reqwest::Method;
use serde_json::{Value, json};
use support::{TestServer, USER_AGENT, backends};

/// The spec's audited actions.
const ACTIONS: [&str; 9] = [
    "deploy",
    "rollback",
    "scale",
    "env.set",
    "env.delete",
    "domain.add",
    "domain.remove",
    "app.create",
    "app.delete",
];

fn only_row(rows: &[AuditEntry], what: &str) -> AuditEntry {
    assert_eq!(
        rows.len(),
        1,
        "{what}: expected exactly one row, got {rows:#?}"
    );
    rows[0].clone()
}

fn assert_row(row: &AuditEntry, user: &str, app: &str, action: &str) {
    assert_eq!(row.user_id, user, "{action}");
    assert_eq!(row.user_email, format!("{user}@example.com"), "{action}");
    assert_eq!(row.org, "acme", "{action}");
    assert_eq!(row.app.as_deref(), Some(app), "{action}");
    assert_eq!(row.action, action);
    assert_eq!(row.ip_address.as_deref(), Some("127.0.0.1"), "{action}");
    assert_eq!(row.user_agent.as_deref(), Some(USER_AGENT), "{action}");
    assert!(row.details.is_object(), "{action}: {}", row.details);
}

#[tokio::test]
async fn audited_actions() {
    for backend in backends() {
        audited_actions_on(backend).await;
    }
}

async fn audited_actions_on(backend: &'static str) {
    let s = TestServer::start(backend).await;
    let docker = s.docker_up().await;
    let admin = s.user("boss", false, &[("acme", Role::Admin)]).await;
    let dev = s.user("dev", false, &[("acme", Role::Developer)]).await;

    // app.create
    let (st, app) = s
        .call(
            &admin,
            Method::POST,
            "/api/v1/apps",
            Some(json!({"name": "web", "org": "acme", "repo": "https://git.example.com/web.git"})),
        )
        .await;
    assert_eq!(st, 201, "{app}");
    let row = only_row(&s.audit_rows("app.create", Some("web")).await, "app.create");
    assert_row(&row, "boss", "web", "app.create");
    assert_eq!(row.details["repo"], "https://git.example.com/web.git");
    assert_eq!(row.details["branch"], "main");

    // Failed change, inside the store's transaction: the name exists → 409, no row.
    let (st, body) = s
        .call(
            &admin,
            Method::POST,
            "/api/v1/apps",
            Some(
                json!({"name": "web", "org": "acme", "repo": "https://git.example.com/other.git"}),
            ),
        )
        .await;
    assert_eq!(st, 409, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or("")
            .contains("already exists")
    );
    assert_eq!(s.audit_rows("app.create", Some("web")).await.len(), 1);

    // deploy
    if docker {
        let (st, d) = s
            .call(
                &dev,
                Method::POST,
                "/api/v1/apps/web/deploy",
                Some(json!({})),
            )
            .await;
        assert_eq!(st, 202, "{d}");
        assert_eq!(d["status"], "queued");
        let row = only_row(&s.audit_rows("deploy", Some("web")).await, "deploy");
        assert_row(&row, "dev", "web", "deploy");
        assert_eq!(row.details["branch"], "main");
    }
    // A refused deploy (bad branch) writes no deploy row.
    let before = s.audit_rows("deploy", Some("web")).await.len();
    let (st, _) = s
        .call(
            &dev,
            Method::POST,
            "/api/v1/apps/web/deploy",
            Some(json!({"branch": "-x --upload-pack=evil"})),
        )
        .await;
    assert_eq!(st, 400);
    assert_eq!(s.audit_rows("deploy", Some("web")).await.len(), before);

    // Two earlier deployments, the second serving, so scale and rollback have something to act on.
    let app = s.store().get_app("acme", "web").await.expect("app");
    let mut ids = Vec::new();
    for (tag, status) in [
        ("aaaaaaa", DeploymentStatus::Superseded),
        ("bbbbbbb", DeploymentStatus::Running),
    ] {
        let d = s
            .store()
            .create_deployment(
                NewDeployment {
                    app_id: app.id,
                    source: DeploymentSource::Image {
                        image: format!("acme-web:{tag}"),
                    },
                    deployed_by: "dev".into(),
                    image_tag: format!("acme-web:{tag}"),
                    image_digest: None,
                    git_commit: String::new(),
                    git_message: String::new(),
                    url: String::new(),
                },
                None,
            )
            .await
            .expect("deployment");
        s.store()
            .update_deployment(
                d.id,
                DeploymentPatch {
                    status: Some(status),
                    manifest: Some(json!({"name": "web"})),
                    ..Default::default()
                },
            )
            .await
            .expect("patch");
        ids.push(d.id);
    }
    s.store()
        .update_app(
            app.id,
            AppPatch {
                current_deployment_id: Some(Some(ids[1])),
                desired_deployment_id: Some(Some(ids[1])),
                ..Default::default()
            },
            None,
        )
        .await
        .expect("app patch");

    // scale, and a refused one (too many) that writes nothing
    let (st, body) = s
        .call(
            &dev,
            Method::POST,
            "/api/v1/apps/web/scale",
            Some(json!({"instances": 3})),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["instances"], 3);
    let (st, _) = s
        .call(
            &dev,
            Method::POST,
            "/api/v1/apps/web/scale",
            Some(json!({"instances": 101})),
        )
        .await;
    assert_eq!(st, 400);
    let row = only_row(&s.audit_rows("scale", Some("web")).await, "scale");
    assert_row(&row, "dev", "web", "scale");
    assert_eq!(row.details["to"], 3);

    // rollback
    if docker {
        let (st, d) = s
            .call(
                &dev,
                Method::POST,
                "/api/v1/apps/web/rollback",
                Some(json!({})),
            )
            .await;
        assert_eq!(st, 202, "{d}");
        assert_eq!(d["imageTag"], "acme-web:aaaaaaa");
        let row = only_row(&s.audit_rows("rollback", Some("web")).await, "rollback");
        assert_row(&row, "dev", "web", "rollback");
        assert_eq!(row.details["to"], "acme-web:aaaaaaa");
    }

    // env.set / env.delete, and unsetting what is not there writes nothing
    let (st, body) = s
        .call(
            &dev,
            Method::PUT,
            "/api/v1/apps/web/env/LOG_LEVEL",
            Some(json!({"value": "debug"})),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    let row = only_row(&s.audit_rows("env.set", Some("web")).await, "env.set");
    assert_row(&row, "dev", "web", "env.set");
    assert_eq!(row.details["name"], "LOG_LEVEL");
    assert!(
        !row.details.to_string().contains("debug"),
        "values stay out of the audit log"
    );
    let (st, _) = s
        .call(&dev, Method::DELETE, "/api/v1/apps/web/env/LOG_LEVEL", None)
        .await;
    assert_eq!(st, 204);
    let (st, body) = s
        .call(&dev, Method::DELETE, "/api/v1/apps/web/env/NEVER_SET", None)
        .await;
    assert_eq!(st, 404, "{body}");
    let row = only_row(&s.audit_rows("env.delete", Some("web")).await, "env.delete");
    assert_row(&row, "dev", "web", "env.delete");
    assert_eq!(row.details["name"], "LOG_LEVEL");

    // domain.add / domain.remove; a domain routed elsewhere (store conflict) and
    // removing a domain that is not there write nothing
    let (st, body) = s
        .call(
            &dev,
            Method::POST,
            "/api/v1/apps/web/domains",
            Some(json!({"domain": "Web.Example.COM"})),
        )
        .await;
    assert_eq!(st, 201, "{body}");
    assert_eq!(body["domain"], "web.example.com");
    s.app("acme", "other").await;
    let (st, body) = s
        .call(
            &dev,
            Method::POST,
            "/api/v1/apps/other/domains",
            Some(json!({"domain": "web.example.com"})),
        )
        .await;
    assert_eq!(st, 409, "{body}");
    assert!(s.audit_rows("domain.add", Some("other")).await.is_empty());
    let (st, _) = s
        .call(
            &dev,
            Method::DELETE,
            "/api/v1/apps/web/domains/nothere.example.com",
            None,
        )
        .await;
    assert_eq!(st, 404);
    let (st, _) = s
        .call(
            &dev,
            Method::DELETE,
            "/api/v1/apps/web/domains/web.example.com",
            None,
        )
        .await;
    assert_eq!(st, 204);
    let row = only_row(&s.audit_rows("domain.add", Some("web")).await, "domain.add");
    assert_row(&row, "dev", "web", "domain.add");
    assert_eq!(row.details["domain"], "web.example.com");
    let row = only_row(
        &s.audit_rows("domain.remove", Some("web")).await,
        "domain.remove",
    );
    assert_row(&row, "dev", "web", "domain.remove");
    assert_eq!(row.details["domain"], "web.example.com");

    // app.delete (Docker is asked to stop its instances first)
    if docker {
        let (st, body) = s
            .call(&admin, Method::DELETE, "/api/v1/apps/other", None)
            .await;
        assert_eq!(st, 204, "{body}");
        let row = only_row(
            &s.audit_rows("app.delete", Some("other")).await,
            "app.delete",
        );
        assert_row(&row, "boss", "other", "app.delete");
    }

    if docker {
        for action in ACTIONS {
            let rows = s.audit_rows(action, None).await;
            assert_eq!(rows.len(), 1, "{backend}: {action}: {rows:#?}");
        }
    }
}

#[tokio::test]
async fn refusals_are_recorded() {
    for backend in backends() {
        let s = TestServer::start(backend).await;
        s.app("acme", "web").await;
        let viewer = s.user("watcher", false, &[("acme", Role::Viewer)]).await;
        let outsider = s.user("stranger", false, &[("bravo", Role::Admin)]).await;

        let (st, _) = s
            .call(
                &viewer,
                Method::PUT,
                "/api/v1/apps/web/env/K",
                Some(json!({"value": "v"})),
            )
            .await;
        assert_eq!(st, 403);
        let (st, _) = s
            .call(&outsider, Method::GET, "/api/v1/apps/web", None)
            .await;
        assert_eq!(st, 404);
        let (st, _) = s
            .call(&outsider, Method::GET, "/api/v1/audit?org=acme", None)
            .await;
        assert_eq!(st, 404);

        let rows = s.audit_rows("auth.denied", None).await;
        let by = |u: &str| {
            rows.iter()
                .filter(|r| r.user_id == u)
                .cloned()
                .collect::<Vec<_>>()
        };
        let v = only_row(&by("watcher"), "viewer refused");
        assert_eq!(v.org, "acme");
        assert_eq!(v.details["action"], "env");
        assert_eq!(v.details["role"], "viewer");
        assert_eq!(v.details["needs"], "developer");
        assert_eq!(v.user_agent.as_deref(), Some(USER_AGENT));
        let o = by("stranger");
        assert_eq!(o.len(), 2, "{backend}: {o:#?}");
        assert!(o.iter().all(|r| r.org == "acme"));
        assert!(o.iter().any(|r| r.app.as_deref() == Some("web")));
        assert!(o.iter().any(|r| r.details["action"] == "audit.read"));
        // Nothing was changed: no env.set row.
        assert!(s.audit_rows("env.set", None).await.is_empty());
    }
}

#[tokio::test]
async fn admins_query_and_export_the_log() {
    for backend in backends() {
        admins_query_and_export_on(backend).await;
    }
}

async fn admins_query_and_export_on(backend: &'static str) {
    let s = TestServer::start(backend).await;
    s.app("acme", "web").await;
    s.app("acme", "api").await;
    s.app("bravo", "site").await;
    let admin = s.user("boss", false, &[("acme", Role::Admin)]).await;
    let dev = s.user("dev", false, &[("acme", Role::Developer)]).await;
    let bravo_admin = s.user("bravo-boss", false, &[("bravo", Role::Admin)]).await;
    let root = s.user("root", true, &[]).await;

    for (token, app, key) in [
        (&dev, "web", "A"),
        (&admin, "web", "B"),
        (&dev, "api", "C"),
        (&bravo_admin, "site", "D"),
    ] {
        let path = format!("/api/v1/apps/{app}/env/{key}");
        let (st, body) = s
            .call(token, Method::PUT, &path, Some(json!({"value": "1"})))
            .await;
        assert_eq!(st, 200, "{body}");
    }
    let (st, _) = s
        .call(
            &dev,
            Method::POST,
            "/api/v1/apps/web/domains",
            Some(json!({"domain": "web.example.com"})),
        )
        .await;
    assert_eq!(st, 201);

    let get = |token: &String, q: &str| {
        let token = token.clone();
        let path = format!("/api/v1/audit{q}");
        let s = &s;
        async move { s.call(&token, Method::GET, &path, None).await }
    };
    let rows = |v: &Value| v.as_array().cloned().unwrap_or_default();

    // An org admin sees their organisation only; newest first.
    let (st, all) = get(&admin, "").await;
    assert_eq!(st, 200, "{all}");
    let all = rows(&all);
    assert_eq!(all.len(), 4, "{backend}: {all:#?}");
    assert!(all.iter().all(|r| r["org"] == "acme"));
    let times: Vec<&str> = all.iter().filter_map(|r| r["timestamp"].as_str()).collect();
    let parsed: Vec<_> = times
        .iter()
        .map(|t| chrono::DateTime::parse_from_rfc3339(t).expect("time"))
        .collect();
    assert!(
        parsed.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {times:?}"
    );

    // By action, user, app.
    let (_, v) = get(&admin, "?action=domain.add").await;
    assert_eq!(rows(&v).len(), 1);
    let (_, v) = get(&admin, "?user=dev").await;
    assert_eq!(rows(&v).len(), 3);
    assert!(rows(&v).iter().all(|r| r["userId"] == "dev"));
    let (_, v) = get(&admin, "?app=api").await;
    assert_eq!(rows(&v).len(), 1);
    let (_, v) = get(&admin, "?app=web&user=dev&action=env.set").await;
    assert_eq!(rows(&v).len(), 1);

    // By time: since the oldest row's time includes all; until before it includes none.
    let oldest = parsed.last().expect("rows").with_timezone(&chrono::Utc);
    let since = (oldest).to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let (_, v) = get(&admin, &format!("?since={}", urlencode(&since))).await;
    assert_eq!(rows(&v).len(), 4);
    let until =
        (oldest - chrono::Duration::seconds(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (_, v) = get(&admin, &format!("?until={}", urlencode(&until))).await;
    assert_eq!(rows(&v).len(), 0);
    let future = (chrono::Utc::now() + chrono::Duration::hours(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (_, v) = get(&admin, &format!("?since={}", urlencode(&future))).await;
    assert_eq!(rows(&v).len(), 0);
    let (st, v) = get(&admin, "?since=yesterday").await;
    assert_eq!(st, 400, "{v}");

    // CSV export with the spec's columns, one line per row.
    let (st, csv) = get(&admin, "?format=csv").await;
    assert_eq!(st, 200);
    let csv = csv.as_str().expect("text").to_string();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("id,timestamp,user_id,user_email,org,app,action,details,ip_address,user_agent")
    );
    let body: Vec<&str> = lines.collect();
    assert_eq!(body.len(), 4, "{csv}");
    assert!(
        body.iter()
            .any(|l| l.contains(",dev,dev@example.com,acme,web,env.set,")),
        "{csv}"
    );
    let (st, _) = get(&admin, "?format=xml").await;
    assert_eq!(st, 400);

    // A developer may not read it; another org's admin sees only theirs and gets 404 for acme.
    let (st, _) = get(&dev, "").await;
    assert_eq!(st, 403);
    let (st, _) = get(&dev, "?org=acme").await;
    assert_eq!(st, 403);
    let (_, v) = get(&bravo_admin, "").await;
    assert!(rows(&v).iter().all(|r| r["org"] == "bravo"), "{v}");
    let (st, _) = get(&bravo_admin, "?org=acme").await;
    assert_eq!(st, 404);

    // Global admins see everything and export JSON.
    let (_, v) = get(&root, "?format=json").await;
    let orgs: std::collections::BTreeSet<String> = rows(&v)
        .iter()
        .filter(|r| r["action"] != "auth.denied")
        .filter_map(|r| r["org"].as_str().map(str::to_string))
        .collect();
    assert_eq!(orgs.into_iter().collect::<Vec<_>>(), ["acme", "bravo"]);
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

#[tokio::test]
async fn rows_older_than_a_year_are_pruned() {
    use hanzo_server::api::retention::{prune_expired, prune_expired_at};
    for backend in backends() {
        let s = TestServer::start(backend).await;
        s.app("acme", "web").await;
        let dev = s.user("dev", false, &[("acme", Role::Developer)]).await;
        let (st, _) = s
            .call(
                &dev,
                Method::PUT,
                "/api/v1/apps/web/env/K",
                Some(json!({"value": "1"})),
            )
            .await;
        assert_eq!(st, 200);
        assert_eq!(prune_expired(s.store()).await.expect("prune"), 0);
        let now = chrono::Utc::now();
        let kept = prune_expired_at(s.store(), now + chrono::Duration::days(364))
            .await
            .expect("prune");
        assert_eq!(kept, 0, "{backend}: a row younger than a year stays");
        assert_eq!(s.audit_rows("env.set", None).await.len(), 1);
        let removed = prune_expired_at(s.store(), now + chrono::Duration::days(366))
            .await
            .expect("prune");
        assert_eq!(removed, 1, "{backend}");
        assert!(s.audit_rows("env.set", None).await.is_empty());
    }
}

#[tokio::test]
async fn forwarded_addresses_are_taken_from_a_local_proxy() {
    let s = TestServer::start("sqlite").await;
    s.app("acme", "web").await;
    let dev = s.user("dev", false, &[("acme", Role::Developer)]).await;
    let req = s
        .client()
        .put(format!("{}/api/v1/apps/web/env/K", s.url))
        .bearer_auth(&dev)
        .header("x-forwarded-for", "198.51.100.4, 203.0.113.9")
        .json(&json!({"value": "1"}));
    let (st, _) = s.request(Method::PUT, "/api/v1/apps/web/env/K", req).await;
    assert_eq!(st, 200);
    let row = only_row(&s.audit_rows("env.set", None).await, "env.set");
    assert_eq!(row.ip_address.as_deref(), Some("203.0.113.9"));
}
