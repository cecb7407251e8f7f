//! One test suite, run against both backends: every case below becomes a
//! `sqlite::<case>` test (a temporary file) and a `postgres::<case>` test (a fresh
//! database, skipped when `HANZO_TEST_POSTGRES_URL` is unset).

mod support;

use chrono::{Duration, Utc};
use hanzo_core::{
    AppStatus, Application, DeploymentSource, DeploymentStatus, EnvVar, EventType, NewAudit, Role,
};
use hanzo_store::{
    AppPatch, AuditQuery, DeploymentPatch, NewApp, NewDeployment, Store, StoreError,
};
use std::collections::HashSet;
use std::sync::Arc;
use support::Fixture;
use uuid::Uuid;

macro_rules! suite {
    ($($case:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let fx = crate::support::sqlite().await;
                    crate::$case(&fx).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let Some(fx) = crate::support::postgres().await else { return };
                    crate::$case(&fx).await;
                }
            )+
        }
    };
}

suite!(
    orgs_are_idempotent_and_sorted,
    apps_round_trip,
    app_names_conflict_per_org,
    audit_is_written_with_the_change_or_not_at_all,
    domains_are_unique_and_case_insensitive,
    env_vars,
    deployments_round_trip,
    transition_is_compare_and_set,
    concurrent_deployments_get_distinct_numbers,
    claim_takes_oldest_git_build_one_per_app,
    concurrent_claimers_never_share_a_deployment,
    prune_keeps_newest_current_and_desired,
    events_and_logs,
    delete_app_removes_everything,
    users_and_memberships,
    tokens_expire_and_revoke,
    audit_query_filters,
    deliveries_are_deduplicated,
    cron_runs_are_recorded,
    data_survives_reconnect,
);

// ---- helpers ------------------------------------------------------------

fn new_app(org: &str, name: &str) -> NewApp {
    NewApp {
        name: name.to_string(),
        org: org.to_string(),
        repo: format!("https://git.example/{org}/{name}.git"),
        branch: "main".to_string(),
        runtime: "auto".to_string(),
    }
}

fn audit(org: &str, app: Option<&str>, action: &str) -> NewAudit {
    NewAudit {
        user_id: "alice".to_string(),
        user_email: "alice@example.com".to_string(),
        org: org.to_string(),
        app: app.map(str::to_string),
        action: action.to_string(),
        details: serde_json::json!({"note": action}),
        ip_address: Some("127.0.0.1".to_string()),
        user_agent: Some("test".to_string()),
    }
}

fn git(app_id: Uuid) -> NewDeployment {
    NewDeployment {
        app_id,
        source: DeploymentSource::Git {
            branch: "main".to_string(),
        },
        deployed_by: "alice".to_string(),
        image_tag: String::new(),
        image_digest: None,
        git_commit: String::new(),
        git_message: String::new(),
        url: "http://hello.localhost".to_string(),
    }
}

fn image(app_id: Uuid) -> NewDeployment {
    NewDeployment {
        source: DeploymentSource::Image {
            image: "nginx:1".to_string(),
        },
        image_tag: "nginx:1".to_string(),
        ..git(app_id)
    }
}

async fn app(store: &Arc<dyn Store>, org: &str, name: &str) -> Application {
    store
        .create_app(new_app(org, name), None)
        .await
        .expect("create app")
}

async fn all_audit(store: &Arc<dyn Store>) -> Vec<hanzo_core::AuditEntry> {
    store
        .query_audit(&AuditQuery::default())
        .await
        .expect("query audit")
}

fn status(s: DeploymentStatus) -> DeploymentPatch {
    DeploymentPatch {
        status: Some(s),
        ..Default::default()
    }
}

#[track_caller]
fn assert_not_found<T: std::fmt::Debug>(r: Result<T, StoreError>, what: &str) {
    match r {
        Err(StoreError::NotFound { what: w }) => assert_eq!(w, what),
        other => panic!("expected NotFound {{ {what} }}, got {other:?}"),
    }
}

#[track_caller]
fn assert_conflict<T: std::fmt::Debug>(r: Result<T, StoreError>, starts_with: &str) {
    match r {
        Err(StoreError::Conflict { what }) => assert!(what.starts_with(starts_with), "{what}"),
        other => panic!("expected Conflict {{ {starts_with}… }}, got {other:?}"),
    }
}

// ---- cases ----------------------------------------------------------------

async fn orgs_are_idempotent_and_sorted(fx: &Fixture) {
    let s = &fx.store;
    s.ensure_org("zoo").await.unwrap();
    s.ensure_org("hanzo").await.unwrap();
    s.ensure_org("zoo").await.unwrap();
    assert_eq!(s.list_orgs().await.unwrap(), vec!["hanzo", "zoo"]);
    // Creating an app creates its organisation.
    app(s, "lux", "gw").await;
    assert_eq!(s.list_orgs().await.unwrap(), vec!["hanzo", "lux", "zoo"]);
}

async fn apps_round_trip(fx: &Fixture) {
    let s = &fx.store;
    let before = Utc::now() - Duration::seconds(1);
    let hello = app(s, "hanzo", "hello").await;
    assert_eq!(hello.name, "hello");
    assert_eq!(hello.org, "hanzo");
    assert_eq!(hello.branch, "main");
    assert_eq!(hello.runtime, "auto");
    assert_eq!(hello.status, AppStatus::Stopped);
    assert_eq!(hello.instances, 1);
    assert!(hello.domains.is_empty());
    assert_eq!(hello.current_deployment_id, None);
    assert!(hello.created_at > before && hello.created_at <= Utc::now());

    assert_eq!(s.get_app("hanzo", "hello").await.unwrap(), hello);
    assert_eq!(s.get_app_by_id(hello.id).await.unwrap(), hello);
    assert_not_found(s.get_app("hanzo", "nope").await, "application hanzo/nope");
    let missing = Uuid::new_v4();
    assert_not_found(
        s.get_app_by_id(missing).await,
        &format!("application {missing}"),
    );

    let api = app(s, "hanzo", "api").await;
    let gw = app(s, "lux", "gw").await;
    let names = |apps: Vec<Application>| {
        apps.into_iter()
            .map(|a| format!("{}/{}", a.org, a.name))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(s.list_apps(None).await.unwrap()),
        ["hanzo/api", "hanzo/hello", "lux/gw"]
    );
    assert_eq!(
        names(s.list_apps(Some(&["lux".to_string()])).await.unwrap()),
        ["lux/gw"]
    );
    assert!(s.list_apps(Some(&[])).await.unwrap().is_empty());

    // Patches change only what they name; Some(None) clears.
    let d = s.create_deployment(git(hello.id), None).await.unwrap();
    let updated = s
        .update_app(
            hello.id,
            AppPatch {
                status: Some(AppStatus::Running),
                current_deployment_id: Some(Some(d.id)),
                desired_deployment_id: Some(Some(d.id)),
                instances: Some(3),
                branch: Some("prod".to_string()),
                repo: None,
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(updated.status, AppStatus::Running);
    assert_eq!(updated.current_deployment_id, Some(d.id));
    assert_eq!(updated.desired_deployment_id, Some(d.id));
    assert_eq!(updated.instances, 3);
    assert_eq!(updated.branch, "prod");
    assert_eq!(updated.repo, hello.repo);
    assert!(updated.updated_at >= hello.updated_at);
    assert_eq!(s.get_app_by_id(hello.id).await.unwrap(), updated);
    let cleared = s
        .update_app(
            hello.id,
            AppPatch {
                current_deployment_id: Some(None),
                ..Default::default()
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(cleared.current_deployment_id, None);
    assert_eq!(cleared.desired_deployment_id, Some(d.id));
    assert_eq!(cleared.instances, 3);
    assert_not_found(
        s.update_app(missing, AppPatch::default(), None).await,
        &format!("application {missing}"),
    );

    // Webhooks find apps by repository, tolerating ".git" and a trailing slash.
    let by_repo = s
        .find_apps_by_repo("https://git.example/hanzo/api")
        .await
        .unwrap();
    assert_eq!(
        by_repo.iter().map(|a| a.id).collect::<Vec<_>>(),
        vec![api.id]
    );
    let by_repo = s
        .find_apps_by_repo("https://git.example/lux/gw.git")
        .await
        .unwrap();
    assert_eq!(
        by_repo.iter().map(|a| a.id).collect::<Vec<_>>(),
        vec![gw.id]
    );
    assert!(
        s.find_apps_by_repo("https://git.example/other")
            .await
            .unwrap()
            .is_empty()
    );

    s.delete_app(api.id, None).await.unwrap();
    assert_not_found(s.get_app("hanzo", "api").await, "application hanzo/api");
    assert_not_found(
        s.delete_app(api.id, None).await,
        &format!("application {}", api.id),
    );
}

async fn app_names_conflict_per_org(fx: &Fixture) {
    let s = &fx.store;
    app(s, "hanzo", "hello").await;
    assert_conflict(
        s.create_app(new_app("hanzo", "hello"), None).await,
        "application hanzo/hello",
    );
    // The same name in another org is fine.
    app(s, "lux", "hello").await;
}

async fn audit_is_written_with_the_change_or_not_at_all(fx: &Fixture) {
    let s = &fx.store;
    let a = audit("hanzo", Some("hello"), "app.create");
    let hello = s
        .create_app(new_app("hanzo", "hello"), Some(&a))
        .await
        .unwrap();
    let rows = all_audit(s).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].action, "app.create");
    assert_eq!(rows[0].user_id, "alice");
    assert_eq!(rows[0].user_email, "alice@example.com");
    assert_eq!(rows[0].app.as_deref(), Some("hello"));
    assert_eq!(rows[0].details, serde_json::json!({"note": "app.create"}));
    assert_eq!(rows[0].ip_address.as_deref(), Some("127.0.0.1"));
    assert_eq!(rows[0].user_agent.as_deref(), Some("test"));

    // A failed change leaves no audit row.
    assert_conflict(
        s.create_app(new_app("hanzo", "hello"), Some(&a)).await,
        "application hanzo/hello",
    );
    let missing = Uuid::new_v4();
    assert!(
        s.delete_app(missing, Some(&audit("hanzo", None, "app.delete")))
            .await
            .is_err()
    );
    assert!(
        s.update_app(
            missing,
            AppPatch::default(),
            Some(&audit("hanzo", None, "scale"))
        )
        .await
        .is_err()
    );
    assert!(
        s.create_deployment(git(missing), Some(&audit("hanzo", None, "deploy")))
            .await
            .is_err()
    );
    assert!(
        s.remove_domain(
            hello.id,
            "nope.example",
            Some(&audit("hanzo", None, "domain.remove"))
        )
        .await
        .is_err()
    );
    assert!(
        s.delete_env(hello.id, "NOPE", Some(&audit("hanzo", None, "env.delete")))
            .await
            .is_err()
    );
    assert_eq!(all_audit(s).await.len(), 1);

    // Each audited mutation writes exactly one row.
    let other = app(s, "hanzo", "other").await;
    s.add_domain(other.id, "taken.example", None).await.unwrap();
    assert!(
        s.add_domain(
            hello.id,
            "taken.example",
            Some(&audit("hanzo", None, "domain.add"))
        )
        .await
        .is_err()
    );
    assert_eq!(all_audit(s).await.len(), 1);
    s.add_domain(
        hello.id,
        "hello.example",
        Some(&audit("hanzo", Some("hello"), "domain.add")),
    )
    .await
    .unwrap();
    s.remove_domain(
        hello.id,
        "hello.example",
        Some(&audit("hanzo", Some("hello"), "domain.remove")),
    )
    .await
    .unwrap();
    let var = EnvVar {
        name: "A".into(),
        value: "1".into(),
    };
    s.set_env(
        hello.id,
        &var,
        Some(&audit("hanzo", Some("hello"), "env.set")),
    )
    .await
    .unwrap();
    s.delete_env(
        hello.id,
        "A",
        Some(&audit("hanzo", Some("hello"), "env.delete")),
    )
    .await
    .unwrap();
    s.create_deployment(
        git(hello.id),
        Some(&audit("hanzo", Some("hello"), "deploy")),
    )
    .await
    .unwrap();
    s.update_app(
        hello.id,
        AppPatch {
            instances: Some(2),
            ..Default::default()
        },
        Some(&audit("hanzo", Some("hello"), "scale")),
    )
    .await
    .unwrap();
    s.delete_app(hello.id, Some(&audit("hanzo", Some("hello"), "app.delete")))
        .await
        .unwrap();
    let actions: Vec<String> = all_audit(s).await.into_iter().map(|e| e.action).collect();
    assert_eq!(
        actions,
        [
            "app.delete",
            "scale",
            "deploy",
            "env.delete",
            "env.set",
            "domain.remove",
            "domain.add",
            "app.create"
        ]
    );
}

async fn domains_are_unique_and_case_insensitive(fx: &Fixture) {
    let s = &fx.store;
    let hello = app(s, "hanzo", "hello").await;
    let other = app(s, "lux", "other").await;
    s.add_domain(hello.id, "www.Hello.example", None)
        .await
        .unwrap();
    s.add_domain(hello.id, "api.hello.example", None)
        .await
        .unwrap();
    assert_eq!(
        s.get_app_by_id(hello.id).await.unwrap().domains,
        vec!["api.hello.example", "www.hello.example"]
    );
    assert_eq!(
        s.list_apps(None).await.unwrap()[0].domains,
        vec!["api.hello.example", "www.hello.example"]
    );
    assert_conflict(
        s.add_domain(other.id, "WWW.HELLO.EXAMPLE", None).await,
        "domain www.hello.example",
    );
    assert_conflict(
        s.add_domain(hello.id, "www.hello.example", None).await,
        "domain www.hello.example",
    );
    assert!(s.get_app_by_id(other.id).await.unwrap().domains.is_empty());

    s.remove_domain(hello.id, "WWW.hello.example", None)
        .await
        .unwrap();
    assert_eq!(
        s.get_app_by_id(hello.id).await.unwrap().domains,
        vec!["api.hello.example"]
    );
    assert_not_found(
        s.remove_domain(hello.id, "www.hello.example", None).await,
        "domain www.hello.example of application hanzo/hello",
    );
    // Freed, it can go to another app.
    s.add_domain(other.id, "www.hello.example", None)
        .await
        .unwrap();
    let missing = Uuid::new_v4();
    assert_not_found(
        s.add_domain(missing, "x.example", None).await,
        &format!("application {missing}"),
    );
}

async fn env_vars(fx: &Fixture) {
    let s = &fx.store;
    let hello = app(s, "hanzo", "hello").await;
    let other = app(s, "hanzo", "other").await;
    let set = |n: &str, v: &str| EnvVar {
        name: n.into(),
        value: v.into(),
    };
    s.set_env(hello.id, &set("PORT", "8080"), None)
        .await
        .unwrap();
    s.set_env(hello.id, &set("DEBUG", "1"), None).await.unwrap();
    s.set_env(hello.id, &set("PORT", "9090"), None)
        .await
        .unwrap();
    s.set_env(other.id, &set("PORT", "1"), None).await.unwrap();
    assert_eq!(
        s.list_env(hello.id).await.unwrap(),
        vec![set("DEBUG", "1"), set("PORT", "9090")]
    );
    s.delete_env(hello.id, "DEBUG", None).await.unwrap();
    assert_eq!(
        s.list_env(hello.id).await.unwrap(),
        vec![set("PORT", "9090")]
    );
    assert_not_found(
        s.delete_env(hello.id, "DEBUG", None).await,
        "environment variable DEBUG of application hanzo/hello",
    );
    assert_eq!(s.list_env(other.id).await.unwrap(), vec![set("PORT", "1")]);
    let missing = Uuid::new_v4();
    assert_not_found(
        s.set_env(missing, &set("A", "b"), None).await,
        &format!("application {missing}"),
    );
}

async fn deployments_round_trip(fx: &Fixture) {
    let s = &fx.store;
    let hello = app(s, "hanzo", "hello").await;
    let other = app(s, "hanzo", "other").await;
    let d1 = s.create_deployment(git(hello.id), None).await.unwrap();
    assert_eq!(d1.number, 1);
    assert_eq!(d1.status, DeploymentStatus::Queued);
    assert_eq!(d1.app_id, hello.id);
    assert_eq!(d1.build_logs, format!("/api/v1/deployments/{}/logs", d1.id));
    assert_eq!(
        d1.source,
        DeploymentSource::Git {
            branch: "main".into()
        }
    );
    assert_eq!(d1.completed_at, None);
    assert_eq!(d1.manifest, None);
    let d2 = s.create_deployment(image(hello.id), None).await.unwrap();
    assert_eq!(d2.number, 2);
    assert_eq!(d2.image_tag, "nginx:1");
    let rb = NewDeployment {
        source: DeploymentSource::Rollback { of: d1.id },
        ..git(hello.id)
    };
    let d3 = s.create_deployment(rb, None).await.unwrap();
    assert_eq!(d3.source, DeploymentSource::Rollback { of: d1.id });
    assert_eq!(
        s.create_deployment(git(other.id), None)
            .await
            .unwrap()
            .number,
        1
    );

    assert_eq!(s.get_deployment(d2.id).await.unwrap(), d2);
    let missing = Uuid::new_v4();
    assert_not_found(
        s.get_deployment(missing).await,
        &format!("deployment {missing}"),
    );
    assert_not_found(
        s.create_deployment(git(missing), None).await,
        &format!("application {missing}"),
    );

    let listed: Vec<i64> = s
        .list_deployments(hello.id, 25)
        .await
        .unwrap()
        .iter()
        .map(|d| d.number)
        .collect();
    assert_eq!(listed, vec![3, 2, 1]);
    let listed: Vec<i64> = s
        .list_deployments(hello.id, 2)
        .await
        .unwrap()
        .iter()
        .map(|d| d.number)
        .collect();
    assert_eq!(listed, vec![3, 2]);

    let done = Utc::now();
    let manifest = serde_json::json!({"name": "hello", "services": {"web": {"port": 8080}}});
    let patched = s
        .update_deployment(
            d1.id,
            DeploymentPatch {
                status: Some(DeploymentStatus::Running),
                image_tag: Some("127.0.0.1:5000/hanzo-hello:abc1234".into()),
                image_digest: Some("sha256:0123".into()),
                git_commit: Some("abc1234def".into()),
                git_message: Some("Fix it".into()),
                url: Some("http://hello.example".into()),
                error: Some("it broke — fix it".into()),
                manifest: Some(manifest.clone()),
                completed_at: Some(done),
            },
        )
        .await
        .unwrap();
    assert_eq!(patched.status, DeploymentStatus::Running);
    assert_eq!(patched.image_tag, "127.0.0.1:5000/hanzo-hello:abc1234");
    assert_eq!(patched.image_digest.as_deref(), Some("sha256:0123"));
    assert_eq!(patched.git_commit, "abc1234def");
    assert_eq!(patched.git_message, "Fix it");
    assert_eq!(patched.url, "http://hello.example");
    assert_eq!(patched.error.as_deref(), Some("it broke — fix it"));
    assert_eq!(patched.manifest, Some(manifest));
    let completed = patched.completed_at.expect("completed_at");
    assert!((completed - done).num_microseconds().unwrap().abs() < 2);
    assert_eq!(s.get_deployment(d1.id).await.unwrap(), patched);
    // An empty patch changes nothing.
    assert_eq!(
        s.update_deployment(d1.id, DeploymentPatch::default())
            .await
            .unwrap(),
        patched
    );
    assert_not_found(
        s.update_deployment(missing, DeploymentPatch::default())
            .await,
        &format!("deployment {missing}"),
    );

    let queued: Vec<Uuid> = s
        .deployments_in(&[DeploymentStatus::Queued])
        .await
        .unwrap()
        .iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(queued.len(), 3);
    assert_eq!(&queued[..2], &[d2.id, d3.id]);
    let running = s
        .deployments_in(&[DeploymentStatus::Running, DeploymentStatus::Failed])
        .await
        .unwrap();
    assert_eq!(
        running.iter().map(|d| d.id).collect::<Vec<_>>(),
        vec![d1.id]
    );
    assert!(s.deployments_in(&[]).await.unwrap().is_empty());
}

async fn transition_is_compare_and_set(fx: &Fixture) {
    let s = &fx.store;
    let hello = app(s, "hanzo", "hello").await;
    let d = s.create_deployment(image(hello.id), None).await.unwrap();
    let moved = s
        .transition_deployment(
            d.id,
            DeploymentStatus::Queued,
            status(DeploymentStatus::Deploying),
        )
        .await
        .unwrap();
    assert_eq!(moved.status, DeploymentStatus::Deploying);
    match s
        .transition_deployment(
            d.id,
            DeploymentStatus::Queued,
            status(DeploymentStatus::Deploying),
        )
        .await
    {
        Err(StoreError::StaleStatus { expected, actual }) => {
            assert_eq!(expected, "queued");
            assert_eq!(actual, "deploying");
        }
        other => panic!("expected StaleStatus, got {other:?}"),
    }
    // A stale transition changed nothing.
    assert_eq!(s.get_deployment(d.id).await.unwrap(), moved);
    let missing = Uuid::new_v4();
    assert_not_found(
        s.transition_deployment(
            missing,
            DeploymentStatus::Queued,
            status(DeploymentStatus::Failed),
        )
        .await,
        &format!("deployment {missing}"),
    );

    // Exactly one of many concurrent claimers wins.
    let d = s.create_deployment(image(hello.id), None).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let s = Arc::clone(s);
        tasks.push(tokio::spawn(async move {
            s.transition_deployment(
                d.id,
                DeploymentStatus::Queued,
                status(DeploymentStatus::Deploying),
            )
            .await
        }));
    }
    let mut won = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => won += 1,
            Err(StoreError::StaleStatus { .. }) => {}
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(won, 1);
}

async fn concurrent_deployments_get_distinct_numbers(fx: &Fixture) {
    let s = &fx.store;
    let hello = app(s, "hanzo", "hello").await;
    let other = app(s, "hanzo", "other").await;
    let mut tasks = Vec::new();
    for i in 0..24 {
        let s = Arc::clone(s);
        let app_id = if i % 3 == 0 { other.id } else { hello.id };
        tasks.push(tokio::spawn(async move {
            s.create_deployment(git(app_id), None).await
        }));
    }
    let mut numbers = Vec::new();
    for t in tasks {
        let d = t.await.unwrap().expect("create deployment");
        if d.app_id == hello.id {
            numbers.push(d.number);
        }
    }
    numbers.sort();
    assert_eq!(numbers, (1..=16).collect::<Vec<i64>>());
    let others: HashSet<i64> = s
        .list_deployments(other.id, 100)
        .await
        .unwrap()
        .iter()
        .map(|d| d.number)
        .collect();
    assert_eq!(others, (1..=8).collect());
}

async fn claim_takes_oldest_git_build_one_per_app(fx: &Fixture) {
    let s = &fx.store;
    assert_eq!(s.claim_next_build().await.unwrap(), None);
    let a = app(s, "hanzo", "a").await;
    let b = app(s, "hanzo", "b").await;
    // Image and rollback deployments are never claimed for building.
    let img = s.create_deployment(image(a.id), None).await.unwrap();
    let rb = s
        .create_deployment(
            NewDeployment {
                source: DeploymentSource::Rollback { of: img.id },
                ..image(a.id)
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(s.claim_next_build().await.unwrap(), None);

    let a1 = s.create_deployment(git(a.id), None).await.unwrap();
    let a2 = s.create_deployment(git(a.id), None).await.unwrap();
    let b1 = s.create_deployment(git(b.id), None).await.unwrap();

    let first = s.claim_next_build().await.unwrap().expect("a1");
    assert_eq!(first.id, a1.id);
    assert_eq!(first.status, DeploymentStatus::Building);
    assert_eq!(
        s.get_deployment(a1.id).await.unwrap().status,
        DeploymentStatus::Building
    );
    // a2 waits: app a is building.
    let second = s.claim_next_build().await.unwrap().expect("b1");
    assert_eq!(second.id, b1.id);
    assert_eq!(s.claim_next_build().await.unwrap(), None);
    // Pushing still holds the app.
    s.transition_deployment(
        a1.id,
        DeploymentStatus::Building,
        status(DeploymentStatus::Pushing),
    )
    .await
    .unwrap();
    assert_eq!(s.claim_next_build().await.unwrap(), None);
    // Deploying frees the build slot of the app.
    s.transition_deployment(
        a1.id,
        DeploymentStatus::Pushing,
        status(DeploymentStatus::Deploying),
    )
    .await
    .unwrap();
    let third = s.claim_next_build().await.unwrap().expect("a2");
    assert_eq!(third.id, a2.id);
    assert_eq!(s.claim_next_build().await.unwrap(), None);
    assert_eq!(
        s.get_deployment(img.id).await.unwrap().status,
        DeploymentStatus::Queued
    );
    assert_eq!(
        s.get_deployment(rb.id).await.unwrap().status,
        DeploymentStatus::Queued
    );
}

async fn concurrent_claimers_never_share_a_deployment(fx: &Fixture) {
    let s = &fx.store;
    let mut apps = Vec::new();
    for i in 0..4 {
        let a = app(s, "hanzo", &format!("app{i}")).await;
        for _ in 0..3 {
            s.create_deployment(git(a.id), None).await.unwrap();
        }
        apps.push(a.id);
    }
    // Round 1: eight claimers race; exactly one deployment per app is claimed.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let s = Arc::clone(s);
        tasks.push(tokio::spawn(async move { s.claim_next_build().await }));
    }
    let mut claimed = Vec::new();
    for t in tasks {
        if let Some(d) = t.await.unwrap().expect("claim") {
            claimed.push(d);
        }
    }
    assert_eq!(claimed.len(), 4, "one build per app: {claimed:?}");
    let ids: HashSet<Uuid> = claimed.iter().map(|d| d.id).collect();
    assert_eq!(ids.len(), 4);
    let per_app: HashSet<Uuid> = claimed.iter().map(|d| d.app_id).collect();
    assert_eq!(per_app.len(), 4);
    assert!(claimed.iter().all(|d| d.number == 1));

    // Finishing builds and claiming concurrently: every deployment is claimed once.
    let mut seen: HashSet<Uuid> = ids;
    let mut in_building: Vec<Uuid> = claimed.iter().map(|d| d.id).collect();
    while !in_building.is_empty() {
        for id in in_building.drain(..) {
            s.transition_deployment(
                id,
                DeploymentStatus::Building,
                status(DeploymentStatus::Running),
            )
            .await
            .unwrap();
        }
        let mut tasks = Vec::new();
        for _ in 0..6 {
            let s = Arc::clone(s);
            tasks.push(tokio::spawn(async move { s.claim_next_build().await }));
        }
        let mut round_apps = HashSet::new();
        for t in tasks {
            if let Some(d) = t.await.unwrap().expect("claim") {
                assert!(seen.insert(d.id), "claimed twice: {}", d.id);
                assert!(round_apps.insert(d.app_id), "two builds of one app at once");
                in_building.push(d.id);
            }
        }
    }
    assert_eq!(seen.len(), 12);
    for a in apps {
        assert!(
            s.list_deployments(a, 10)
                .await
                .unwrap()
                .iter()
                .all(|d| d.status == DeploymentStatus::Running)
        );
    }
}

async fn prune_keeps_newest_current_and_desired(fx: &Fixture) {
    let s = &fx.store;
    let hello = app(s, "hanzo", "hello").await;
    let other = app(s, "hanzo", "other").await;
    let mut deps = Vec::new();
    for _ in 0..10 {
        deps.push(s.create_deployment(image(hello.id), None).await.unwrap());
    }
    let other_dep = s.create_deployment(image(other.id), None).await.unwrap();
    for d in &deps {
        s.update_deployment(d.id, status(DeploymentStatus::Superseded))
            .await
            .unwrap();
    }
    // #2 serves, #3 is being rolled out, #4 is being built.
    let (current, desired, building) = (deps[1].id, deps[2].id, deps[3].id);
    s.update_deployment(building, status(DeploymentStatus::Building))
        .await
        .unwrap();
    s.update_app(
        hello.id,
        AppPatch {
            current_deployment_id: Some(Some(current)),
            desired_deployment_id: Some(Some(desired)),
            ..Default::default()
        },
        None,
    )
    .await
    .unwrap();
    s.add_event(deps[0].id, EventType::BuildStarted, "started")
        .await
        .unwrap();
    s.append_log(deps[0].id, "step 1").await.unwrap();

    let deleted = s.prune_deployments(hello.id, 3).await.unwrap();
    let numbers: Vec<i64> = deleted.iter().map(|d| d.number).collect();
    assert_eq!(numbers, vec![7, 6, 5, 1]);
    let left: Vec<i64> = s
        .list_deployments(hello.id, 100)
        .await
        .unwrap()
        .iter()
        .map(|d| d.number)
        .collect();
    assert_eq!(left, vec![10, 9, 8, 4, 3, 2]);
    assert!(s.list_events(deps[0].id).await.unwrap().is_empty());
    assert!(s.read_log(deps[0].id, 0).await.unwrap().is_empty());
    assert_not_found(
        s.get_deployment(deps[0].id).await,
        &format!("deployment {}", deps[0].id),
    );
    // Other apps are untouched; pruning again deletes nothing.
    assert_eq!(
        s.get_deployment(other_dep.id).await.unwrap().id,
        other_dep.id
    );
    assert!(s.prune_deployments(hello.id, 3).await.unwrap().is_empty());
    let app_now = s.get_app_by_id(hello.id).await.unwrap();
    assert_eq!(app_now.current_deployment_id, Some(current));
    assert_eq!(app_now.desired_deployment_id, Some(desired));
    // keep = 0 keeps only the protected ones.
    let deleted = s.prune_deployments(hello.id, 0).await.unwrap();
    assert_eq!(
        deleted.iter().map(|d| d.number).collect::<Vec<_>>(),
        vec![10, 9, 8]
    );
    let missing = Uuid::new_v4();
    assert_not_found(
        s.prune_deployments(missing, 3).await,
        &format!("application {missing}"),
    );
}

async fn events_and_logs(fx: &Fixture) {
    let s = &fx.store;
    let hello = app(s, "hanzo", "hello").await;
    let d = s.create_deployment(git(hello.id), None).await.unwrap();
    let d2 = s.create_deployment(git(hello.id), None).await.unwrap();
    let kinds = [
        EventType::BuildStarted,
        EventType::BuildCompleted,
        EventType::DeployStarted,
        EventType::HealthCheckPassed,
    ];
    for (i, k) in kinds.iter().enumerate() {
        let e = s.add_event(d.id, *k, &format!("step {i}")).await.unwrap();
        assert_eq!(e.kind, *k);
        assert_eq!(e.deployment_id, d.id);
    }
    let events = s.list_events(d.id).await.unwrap();
    assert_eq!(events.iter().map(|e| e.kind).collect::<Vec<_>>(), kinds);
    assert_eq!(events[3].message, "step 3");
    assert!(s.list_events(d2.id).await.unwrap().is_empty());
    let missing = Uuid::new_v4();
    assert_not_found(
        s.add_event(missing, EventType::BuildStarted, "x").await,
        &format!("deployment {missing}"),
    );

    for i in 1..=5 {
        let c = s.append_log(d.id, &format!("line {i}\n")).await.unwrap();
        assert_eq!(c.seq, i);
    }
    assert_eq!(s.append_log(d2.id, "other").await.unwrap().seq, 1);
    let all = s.read_log(d.id, 0).await.unwrap();
    assert_eq!(
        all.iter().map(|c| c.seq).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
    assert_eq!(all[0].text, "line 1\n");
    let rest = s.read_log(d.id, 3).await.unwrap();
    assert_eq!(
        rest.iter().map(|c| c.text.as_str()).collect::<Vec<_>>(),
        vec!["line 4\n", "line 5\n"]
    );
    assert!(s.read_log(d.id, 5).await.unwrap().is_empty());
    assert_not_found(
        s.append_log(missing, "x").await,
        &format!("deployment {missing}"),
    );

    // Concurrent appends to one deployment get distinct, gapless sequence numbers.
    let mut tasks = Vec::new();
    for i in 0..10 {
        let s = Arc::clone(s);
        let id = d2.id;
        tasks.push(tokio::spawn(async move {
            s.append_log(id, &format!("c{i}")).await
        }));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.push(t.await.unwrap().unwrap().seq);
    }
    seqs.sort();
    assert_eq!(seqs, (2..=11).collect::<Vec<i64>>());

    assert_eq!(
        s.prune_logs(Utc::now() - Duration::hours(1)).await.unwrap(),
        0
    );
    assert_eq!(
        s.prune_logs(Utc::now() + Duration::seconds(1))
            .await
            .unwrap(),
        16
    );
    assert!(s.read_log(d.id, 0).await.unwrap().is_empty());
}

async fn delete_app_removes_everything(fx: &Fixture) {
    let s = &fx.store;
    let hello = app(s, "hanzo", "hello").await;
    let keep = app(s, "hanzo", "keep").await;
    let d = s.create_deployment(git(hello.id), None).await.unwrap();
    let kept = s.create_deployment(git(keep.id), None).await.unwrap();
    s.add_event(d.id, EventType::BuildStarted, "x")
        .await
        .unwrap();
    s.append_log(d.id, "x").await.unwrap();
    s.set_env(
        hello.id,
        &EnvVar {
            name: "A".into(),
            value: "1".into(),
        },
        None,
    )
    .await
    .unwrap();
    s.add_domain(hello.id, "hello.example", None).await.unwrap();
    s.update_app(
        hello.id,
        AppPatch {
            current_deployment_id: Some(Some(d.id)),
            ..Default::default()
        },
        None,
    )
    .await
    .unwrap();

    s.delete_app(hello.id, None).await.unwrap();
    assert_not_found(
        s.get_deployment(d.id).await,
        &format!("deployment {}", d.id),
    );
    assert!(s.list_events(d.id).await.unwrap().is_empty());
    assert!(s.read_log(d.id, 0).await.unwrap().is_empty());
    assert!(s.list_deployments(hello.id, 10).await.unwrap().is_empty());
    assert_not_found(
        s.list_env(hello.id).await,
        &format!("application {}", hello.id),
    );
    // Its domain is free again; the other app is untouched.
    s.add_domain(keep.id, "hello.example", None).await.unwrap();
    assert_eq!(s.get_deployment(kept.id).await.unwrap(), kept);
    // The name can be reused, with numbering starting over.
    let again = app(s, "hanzo", "hello").await;
    assert_eq!(
        s.create_deployment(git(again.id), None)
            .await
            .unwrap()
            .number,
        1
    );
}

async fn users_and_memberships(fx: &Fixture) {
    let s = &fx.store;
    let alice = s
        .upsert_user("alice", "alice@example.com", false)
        .await
        .unwrap();
    assert_eq!(alice.email, "alice@example.com");
    assert!(!alice.global_admin);
    let again = s
        .upsert_user("alice", "alice@new.example", true)
        .await
        .unwrap();
    assert_eq!(again.email, "alice@new.example");
    assert!(again.global_admin);
    assert_eq!(again.created_at, alice.created_at);
    assert_eq!(s.get_user("alice").await.unwrap(), again);
    assert_not_found(s.get_user("bob").await, "user bob");
    s.upsert_user("bob", "bob@example.com", false)
        .await
        .unwrap();

    s.set_membership("alice", "zoo", Role::Viewer)
        .await
        .unwrap();
    s.set_membership("alice", "hanzo", Role::Developer)
        .await
        .unwrap();
    s.set_membership("alice", "hanzo", Role::Admin)
        .await
        .unwrap();
    s.set_membership("bob", "hanzo", Role::Viewer)
        .await
        .unwrap();
    let ms = s.memberships("alice").await.unwrap();
    assert_eq!(
        ms.iter()
            .map(|m| (m.org.as_str(), m.role))
            .collect::<Vec<_>>(),
        vec![("hanzo", Role::Admin), ("zoo", Role::Viewer)]
    );
    let members = s.org_members("hanzo").await.unwrap();
    assert_eq!(
        members
            .iter()
            .map(|m| (m.user_id.as_str(), m.role))
            .collect::<Vec<_>>(),
        vec![("alice", Role::Admin), ("bob", Role::Viewer)]
    );
    assert!(s.list_orgs().await.unwrap().contains(&"zoo".to_string()));
    s.remove_membership("alice", "zoo").await.unwrap();
    assert_eq!(s.memberships("alice").await.unwrap().len(), 1);
    assert_not_found(
        s.remove_membership("alice", "zoo").await,
        "membership of user alice in organisation zoo",
    );
    assert_not_found(
        s.set_membership("carol", "hanzo", Role::Viewer).await,
        "user carol",
    );
    assert!(s.memberships("carol").await.unwrap().is_empty());
}

async fn tokens_expire_and_revoke(fx: &Fixture) {
    let s = &fx.store;
    s.upsert_user("alice", "alice@example.com", false)
        .await
        .unwrap();
    s.upsert_user("bob", "bob@example.com", true).await.unwrap();
    let now = Utc::now();
    let forever = s
        .create_token("alice", "laptop", "aaaa", None)
        .await
        .unwrap();
    let soon = s
        .create_token("alice", "ci", "bbbb", Some(now + Duration::hours(1)))
        .await
        .unwrap();
    let bobs = s.create_token("bob", "ops", "cccc", None).await.unwrap();
    assert_eq!(forever.user_id, "alice");
    assert_eq!(forever.name, "laptop");
    assert_eq!(forever.revoked_at, None);

    let (t, u) = s
        .find_token("aaaa", now)
        .await
        .unwrap()
        .expect("valid token");
    assert_eq!(t, forever);
    assert_eq!(u.id, "alice");
    assert_eq!(u.email, "alice@example.com");
    let (_, u) = s
        .find_token("cccc", now)
        .await
        .unwrap()
        .expect("bob's token");
    assert!(u.global_admin);
    assert!(s.find_token("bbbb", now).await.unwrap().is_some());
    // Expired tokens are not found.
    assert!(
        s.find_token("bbbb", now + Duration::hours(2))
            .await
            .unwrap()
            .is_none()
    );
    assert!(s.find_token("zzzz", now).await.unwrap().is_none());

    assert_eq!(
        s.list_tokens("alice")
            .await
            .unwrap()
            .iter()
            .map(|t| t.id)
            .collect::<Vec<_>>(),
        vec![forever.id, soon.id]
    );
    // Only the owner can revoke; revoking twice is fine.
    assert_not_found(
        s.revoke_token("alice", bobs.id).await,
        &format!("token {} of user alice", bobs.id),
    );
    s.revoke_token("alice", forever.id).await.unwrap();
    s.revoke_token("alice", forever.id).await.unwrap();
    assert!(s.find_token("aaaa", now).await.unwrap().is_none());
    let listed = s.list_tokens("alice").await.unwrap();
    assert!(listed[0].revoked_at.is_some());
    assert!(listed[1].revoked_at.is_none());
    assert!(s.find_token("cccc", now).await.unwrap().is_some());

    assert_conflict(s.create_token("bob", "dup", "cccc", None).await, "a token");
    assert_not_found(
        s.create_token("carol", "x", "dddd", None).await,
        "user carol",
    );
}

async fn audit_query_filters(fx: &Fixture) {
    let s = &fx.store;
    let start = Utc::now() - Duration::seconds(1);
    let mut a = audit("hanzo", Some("hello"), "deploy");
    s.record_audit(&a).await.unwrap();
    a.action = "scale".into();
    s.record_audit(&a).await.unwrap();
    let mut b = audit("lux", Some("gw"), "deploy");
    b.user_id = "bob".into();
    s.record_audit(&b).await.unwrap();
    let mut c = audit("zoo", None, "auth.denied");
    c.details = serde_json::json!({"reason": "no role", "nested": [1, 2]});
    let denied = s.record_audit(&c).await.unwrap();
    assert_eq!(denied.details, c.details);
    assert_eq!(denied.app, None);

    let q = |f: fn(&mut AuditQuery)| {
        let mut q = AuditQuery::default();
        f(&mut q);
        q
    };
    let actions = |rows: Vec<hanzo_core::AuditEntry>| {
        rows.into_iter()
            .map(|e| format!("{}:{}", e.org, e.action))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        actions(all_audit(s).await),
        [
            "zoo:auth.denied",
            "lux:deploy",
            "hanzo:scale",
            "hanzo:deploy"
        ]
    );
    assert_eq!(
        actions(
            s.query_audit(&q(|q| q.orgs = Some(vec!["hanzo".into(), "zoo".into()])))
                .await
                .unwrap()
        ),
        ["zoo:auth.denied", "hanzo:scale", "hanzo:deploy"]
    );
    assert!(
        s.query_audit(&q(|q| q.orgs = Some(vec![])))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        actions(
            s.query_audit(&q(|q| q.user_id = Some("bob".into())))
                .await
                .unwrap()
        ),
        ["lux:deploy"]
    );
    assert_eq!(
        actions(
            s.query_audit(&q(|q| q.app = Some("hello".into())))
                .await
                .unwrap()
        ),
        ["hanzo:scale", "hanzo:deploy"]
    );
    assert_eq!(
        actions(
            s.query_audit(&q(|q| q.action = Some("deploy".into())))
                .await
                .unwrap()
        ),
        ["lux:deploy", "hanzo:deploy"]
    );
    assert_eq!(
        actions(s.query_audit(&q(|q| q.limit = Some(2))).await.unwrap()),
        ["zoo:auth.denied", "lux:deploy"]
    );
    let mut window = AuditQuery {
        since: Some(start),
        until: Some(Utc::now() + Duration::seconds(1)),
        ..Default::default()
    };
    assert_eq!(s.query_audit(&window).await.unwrap().len(), 4);
    window.since = Some(Utc::now() + Duration::seconds(1));
    window.until = None;
    assert!(s.query_audit(&window).await.unwrap().is_empty());
    window.since = None;
    window.until = Some(start);
    assert!(s.query_audit(&window).await.unwrap().is_empty());

    assert_eq!(s.prune_audit(start).await.unwrap(), 0);
    assert_eq!(
        s.prune_audit(Utc::now() + Duration::seconds(1))
            .await
            .unwrap(),
        4
    );
    assert!(all_audit(s).await.is_empty());
}

async fn cron_runs_are_recorded(fx: &Fixture) {
    let s = &fx.store;
    let a = app(s, "hanzo", "jobs").await;
    let d = s.create_deployment(image(a.id), None).await.unwrap();
    let tick = chrono::Utc::now() - chrono::Duration::seconds(5);
    let run = s
        .start_cron_run(a.id, d.id, "cron", tick, "running")
        .await
        .unwrap();
    assert_eq!(run.status, "running");
    assert_eq!(run.finished_at, None);
    assert_eq!(run.service, "cron");
    assert_eq!(s.cron_runs_in_progress().await.unwrap().len(), 1);
    let skipped = s
        .start_cron_run(a.id, d.id, "cron", tick, "skipped")
        .await
        .unwrap();
    assert!(
        skipped.finished_at.is_some(),
        "a skipped tick is finished at once"
    );
    s.finish_cron_run(run.id, "failed", Some(3), "boom\n")
        .await
        .unwrap();
    assert!(s.cron_runs_in_progress().await.unwrap().is_empty());
    let runs = s.list_cron_runs(a.id, 10).await.unwrap();
    assert_eq!(runs.len(), 2);
    let done = runs.iter().find(|r| r.id == run.id).unwrap();
    assert_eq!(
        (done.status.as_str(), done.exit_code, done.log_tail.as_str()),
        ("failed", Some(3), "boom\n")
    );
    assert!(done.finished_at.is_some());
    let missing = Uuid::new_v4();
    assert_not_found(
        s.finish_cron_run(missing, "failed", None, "").await,
        &format!("cron run {missing}"),
    );
}

async fn deliveries_are_deduplicated(fx: &Fixture) {
    let s = &fx.store;
    assert!(s.record_delivery("github", "d-1").await.unwrap());
    assert!(!s.record_delivery("github", "d-1").await.unwrap());
    assert!(s.record_delivery("gitlab", "d-1").await.unwrap());
    assert!(s.record_delivery("github", "d-2").await.unwrap());
    // Concurrent redeliveries: exactly one is new.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let s = Arc::clone(s);
        tasks.push(tokio::spawn(async move {
            s.record_delivery("github", "d-3").await
        }));
    }
    let mut new = 0;
    for t in tasks {
        if t.await.unwrap().unwrap() {
            new += 1;
        }
    }
    assert_eq!(new, 1);
}

async fn data_survives_reconnect(fx: &Fixture) {
    let s = &fx.store;
    let hello = s
        .create_app(
            new_app("hanzo", "hello"),
            Some(&audit("hanzo", Some("hello"), "app.create")),
        )
        .await
        .unwrap();
    let d = s.create_deployment(git(hello.id), None).await.unwrap();
    s.append_log(d.id, "line").await.unwrap();
    s.add_domain(hello.id, "hello.example", None).await.unwrap();
    let hello = s.get_app_by_id(hello.id).await.unwrap();

    let reopened = fx.reopen().await;
    // Migrating again is a no-op.
    reopened.migrate().await.unwrap();
    assert_eq!(reopened.get_app("hanzo", "hello").await.unwrap(), hello);
    assert_eq!(reopened.get_deployment(d.id).await.unwrap(), d);
    assert_eq!(reopened.read_log(d.id, 0).await.unwrap().len(), 1);
    assert_eq!(all_audit(&reopened).await.len(), 1);
    assert_eq!(
        reopened
            .create_deployment(git(hello.id), None)
            .await
            .unwrap()
            .number,
        2
    );
    assert!(fx.is_postgres() || fx.url.starts_with("sqlite://"));
}
