//! Docker target against the real engine (`HANZO_TEST_DOCKER=1`).
//!
//! The instances run `python3 -m http.server` from the local base image
//! `python:3.11-slim-bookworm` (made by `scripts/lib/base-images.sh ensure`;
//! override with `HANZO_TEST_PYTHON_IMAGE`). Every test uses its own random
//! organisation, and a guard removes that organisation's containers and
//! network even when the test fails.

use hanzo_runtime::docker::{DockerTarget, network_name};
use hanzo_runtime::health::{exec_check, http_check, tcp_check, wait_healthy};
use hanzo_runtime::{InstanceSpec, InstanceState, RuntimeError, Selector, Target};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

fn docker_enabled() -> bool {
    if std::env::var("HANZO_TEST_DOCKER").as_deref() == Ok("1") {
        return true;
    }
    if std::env::var("HANZO_REQUIRE_SERVICES").as_deref() == Ok("1") {
        panic!("HANZO_TEST_DOCKER=1 is required (HANZO_REQUIRE_SERVICES=1)");
    }
    println!("skipped: HANZO_TEST_DOCKER not set");
    false
}

fn image() -> String {
    std::env::var("HANZO_TEST_PYTHON_IMAGE").unwrap_or_else(|_| "python:3.11-slim-bookworm".into())
}

/// Instances of these tests live in their own scope: a platform server running
/// on the same engine (for instance in end-to-end tests) does not see them, and
/// they do not see its instances.
fn test_scope() -> String {
    std::env::var("HANZO_TEST_RUNTIME_SCOPE").unwrap_or_else(|_| "runtime-tests".into())
}

/// The engine, after checking the test image is there.
async fn target() -> DockerTarget {
    let t = DockerTarget::connect().unwrap().with_scope(&test_scope());
    t.ping().await.unwrap();
    let img = image();
    assert!(
        t.image_id(&img).await.unwrap().is_some(),
        "test image {img} is missing: run scripts/lib/base-images.sh ensure (or set HANZO_TEST_PYTHON_IMAGE)"
    );
    t
}

fn suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..10].to_string()
}

/// Removes every container of the given organisations, then their networks.
struct OrgGuard {
    orgs: Vec<String>,
}

impl OrgGuard {
    fn new(n: usize) -> Self {
        OrgGuard {
            orgs: (0..n).map(|_| format!("t{}", suffix())).collect(),
        }
    }
    fn org(&self, i: usize) -> &str {
        &self.orgs[i]
    }
}

impl Drop for OrgGuard {
    fn drop(&mut self) {
        let orgs = self.orgs.clone();
        // Drop cannot await, and may run inside a runtime: clean up from a fresh thread.
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let t = DockerTarget::connect().unwrap().with_scope(&test_scope());
                for org in &orgs {
                    let sel = Selector {
                        org: Some(org.clone()),
                        ..Default::default()
                    };
                    if let Ok(list) = t.list(&sel).await {
                        for i in list {
                            let _ = t.stop(&i.id, Duration::ZERO).await;
                        }
                    }
                    if let Err(e) = t.remove_network(org).await {
                        eprintln!("cleanup: cannot remove network of {org}: {e}");
                    }
                }
            });
        });
        let _ = done.join();
    }
}

fn web_spec(org: &str, name: &str, deployment: &str) -> InstanceSpec {
    InstanceSpec {
        name: name.to_string(),
        org: org.to_string(),
        app: "hello".into(),
        service: "web".into(),
        deployment_id: deployment.to_string(),
        image: image(),
        env: vec![("GREETING".into(), "hi".to_string().into())],
        port: Some(8000),
        command: Some(vec![
            "python3".into(),
            "-m".into(),
            "http.server".into(),
            "8000".into(),
        ]),
        memory_bytes: Some(128 * 1024 * 1024),
        nano_cpus: Some(500_000_000),
        extra_labels: BTreeMap::from([("ai.hanzo.test".to_string(), "runtime".to_string())]),
        run_once: false,
    }
}

async fn until_http_ok(addr: std::net::IpAddr, port: u16) {
    wait_healthy(
        || http_check(addr, port, "/", Duration::from_secs(1)),
        Duration::from_millis(100),
        Duration::from_secs(20),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn ping_explains_how_to_fix_an_unreachable_engine() {
    // A missing socket is reported on connect; an endpoint that does not answer, on ping.
    let err = DockerTarget::connect_to("unix:///nonexistent/docker.sock").unwrap_err();
    assert!(matches!(err, RuntimeError::Unreachable { .. }), "{err:?}");
    assert!(err.to_string().contains("start dockerd"), "{err}");
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let t = DockerTarget::connect_to(&format!("tcp://127.0.0.1:{closed}")).unwrap();
    let err = t.ping().await.unwrap_err();
    assert!(matches!(err, RuntimeError::Unreachable { .. }), "{err:?}");
    assert!(err.to_string().contains("start dockerd"), "{err}");
}

#[tokio::test]
async fn start_is_idempotent_list_selects_by_labels_and_stop_removes() {
    if !docker_enabled() {
        return;
    }
    let t = target().await;
    let g = OrgGuard::new(1);
    let org = g.org(0);
    let name = format!("hz-{org}-web-1");
    let spec = web_spec(org, &name, "dep-1");

    let first = t.start(&spec).await.unwrap();
    assert_eq!(first.state, InstanceState::Running);
    assert_eq!(first.name, name);
    assert_eq!(
        (
            first.org.as_str(),
            first.app.as_str(),
            first.service.as_str()
        ),
        (org, "hello", "web")
    );
    assert_eq!(first.deployment_id, "dep-1");
    assert_eq!(first.port, Some(8000));
    assert_eq!(first.image, image());
    assert_eq!(
        Some(first.image_id.clone()),
        t.image_id(&image()).await.unwrap()
    );
    let addr = first
        .address
        .expect("an address on the organisation's network");
    until_http_ok(addr, 8000).await;

    // Starting again returns the same instance.
    let again = t.start(&spec).await.unwrap();
    assert_eq!(again.id, first.id);

    // A stopped instance of that name is started again, not recreated.
    t.client().stop_container(&name, None).await.unwrap();
    assert_eq!(
        t.inspect(&name).await.unwrap().unwrap().state,
        InstanceState::Exited
    );
    let restarted = t.start(&spec).await.unwrap();
    assert_eq!(restarted.id, first.id);
    assert_eq!(restarted.state, InstanceState::Running);

    // Limits, env, restart policy and labels reached the engine.
    let c = t.client().inspect_container(&name, None).await.unwrap();
    let hc = c.host_config.unwrap();
    assert_eq!(hc.memory, Some(128 * 1024 * 1024));
    assert_eq!(hc.nano_cpus, Some(500_000_000));
    assert_eq!(hc.init, Some(true));
    let rp = hc.restart_policy.unwrap();
    assert_eq!(
        rp.name.map(|n| n.to_string()).as_deref(),
        Some("on-failure")
    );
    let cfg = c.config.unwrap();
    assert!(cfg.env.unwrap().contains(&"GREETING=hi".to_string()));
    assert_eq!(
        cfg.labels.unwrap().get("ai.hanzo.test").map(String::as_str),
        Some("runtime")
    );

    // A second deployment's instance, to select between.
    let other = t
        .start(&web_spec(org, &format!("hz-{org}-web-2"), "dep-2"))
        .await
        .unwrap();
    let by_org = t
        .list(&Selector {
            org: Some(org.to_string()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        by_org.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
        vec![first.id.as_str(), other.id.as_str()]
    );
    let by_dep = t
        .list(&Selector {
            org: Some(org.to_string()),
            app: Some("hello".into()),
            deployment_id: Some("dep-2".into()),
        })
        .await
        .unwrap();
    assert_eq!(by_dep.len(), 1);
    assert_eq!(by_dep[0].id, other.id);
    assert!(by_dep[0].address.is_some());
    assert_eq!(by_dep[0].restart_count, 0);
    let none = t
        .list(&Selector {
            org: Some(org.to_string()),
            app: Some("nope".into()),
            ..Default::default()
        })
        .await;
    assert!(none.unwrap().is_empty());

    // Stop removes; a stopped (exited) instance is listed with its state first.
    t.client().stop_container(&other.id, None).await.unwrap();
    let sel = Selector {
        deployment_id: Some("dep-2".into()),
        org: Some(org.to_string()),
        ..Default::default()
    };
    let listed = t.list(&sel).await.unwrap();
    assert_eq!(listed[0].state, InstanceState::Exited);
    assert!(listed[0].exit_code.is_some());
    let started = Instant::now();
    t.stop(&first.id, Duration::from_secs(10)).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "SIGTERM should end python under init quickly"
    );
    t.stop(&other.id, Duration::from_secs(10)).await.unwrap();
    assert!(
        t.list(&Selector {
            org: Some(org.to_string()),
            ..Default::default()
        })
        .await
        .unwrap()
        .is_empty()
    );
    // Stopping what is gone is fine.
    t.stop(&first.id, Duration::from_secs(1)).await.unwrap();
    t.stop("hz-never-existed", Duration::from_secs(1))
        .await
        .unwrap();
}

#[tokio::test]
async fn an_instance_that_exits_right_away_is_an_error_with_its_logs() {
    if !docker_enabled() {
        return;
    }
    let t = target().await;
    let g = OrgGuard::new(1);
    let org = g.org(0);
    let mut spec = web_spec(org, &format!("hz-{org}-crash"), "dep-1");
    spec.command = Some(vec![
        "sh".into(),
        "-c".into(),
        "echo starting; echo boom-4711 >&2; exit 3".into(),
    ]);
    let err = t.start(&spec).await.unwrap_err();
    match &err {
        RuntimeError::Exited {
            name,
            exit_code,
            last_logs,
        } => {
            assert_eq!(name, &spec.name);
            assert_eq!(*exit_code, 3);
            assert!(last_logs.contains("boom-4711"), "{last_logs}");
        }
        other => panic!("expected Exited, got {other:?}"),
    }
    println!("error as shown: {err}");

    let mut spec = web_spec(org, &format!("hz-{org}-nocmd"), "dep-1");
    spec.command = Some(vec!["/no/such/binary".into()]);
    let err = t.start(&spec).await.unwrap_err();
    assert!(matches!(err, RuntimeError::Exited { .. }), "{err:?}");

    let lines = t.logs(&format!("hz-{org}-crash"), 1).await.unwrap();
    assert_eq!(lines.len(), 1);
}

/// Networks and addresses of the containers, and the engine's isolation rules.
async fn diagnose(t: &DockerTarget, ids: &[&str]) -> String {
    let mut out = String::new();
    for id in ids {
        if let Ok(c) = t.client().inspect_container(id, None).await {
            let nets = c
                .network_settings
                .and_then(|n| n.networks)
                .unwrap_or_default();
            for (name, e) in nets {
                out.push_str(&format!("\n{id:.12}: {name} {:?}", e.ip_address));
            }
        }
    }
    for chain in [
        "DOCKER-ISOLATION-STAGE-1",
        "DOCKER-ISOLATION-STAGE-2",
        "FORWARD",
    ] {
        if let Ok(o) = std::process::Command::new("iptables")
            .args(["-S", chain])
            .output()
        {
            out.push_str(&format!("\n{}", String::from_utf8_lossy(&o.stdout)));
        }
    }
    out
}

#[tokio::test]
async fn organisations_are_isolated_but_the_host_reaches_every_instance() {
    if !docker_enabled() {
        return;
    }
    let t = target().await;
    let g = OrgGuard::new(2);
    let (a, b) = (g.org(0), g.org(1));
    let a1 = t
        .start(&web_spec(a, &format!("hz-{a}-1"), "d"))
        .await
        .unwrap();
    let a2 = t
        .start(&web_spec(a, &format!("hz-{a}-2"), "d"))
        .await
        .unwrap();
    let b1 = t
        .start(&web_spec(b, &format!("hz-{b}-1"), "d"))
        .await
        .unwrap();
    let (a1_ip, a2_ip, b1_ip) = (
        a1.address.unwrap(),
        a2.address.unwrap(),
        b1.address.unwrap(),
    );
    for ip in [a1_ip, a2_ip, b1_ip] {
        until_http_ok(ip, 8000).await;
    }
    let connect = |ip: std::net::IpAddr| {
        vec![
            "python3".to_string(),
            "-c".to_string(),
            format!(
                "import socket; socket.create_connection(('{ip}', 8000), timeout=2).close(); print('connected')"
            ),
        ]
    };
    println!("a1 {a1_ip}, a2 {a2_ip}, b1 {b1_ip}");
    // Same organisation: allowed (this also proves the probe itself works).
    exec_check(&t, &a1.id, &connect(a2_ip), Duration::from_secs(10))
        .await
        .unwrap();
    // Other organisation: dropped, in both directions.
    let err = match exec_check(&t, &a1.id, &connect(b1_ip), Duration::from_secs(10)).await {
        Err(e) => e,
        Ok(()) => panic!(
            "org A reached org B: {}",
            diagnose(&t, &[&a1.id, &b1.id]).await
        ),
    };
    assert!(err.contains("exited with code"), "{err}");
    println!("org A → org B: {err}");
    let err = match exec_check(&t, &b1.id, &connect(a1_ip), Duration::from_secs(10)).await {
        Err(e) => e,
        Ok(()) => panic!(
            "org B reached org A: {}",
            diagnose(&t, &[&a1.id, &b1.id]).await
        ),
    };
    assert!(err.contains("exited with code"), "{err}");
    // The host reaches both networks.
    assert_eq!(
        http_check(a1_ip, 8000, "/", Duration::from_secs(2)).await,
        Ok(200)
    );
    assert_eq!(
        http_check(b1_ip, 8000, "/", Duration::from_secs(2)).await,
        Ok(200)
    );

    let net = t
        .client()
        .inspect_network(&network_name(a), None)
        .await
        .unwrap();
    let labels = net.labels.unwrap();
    assert_eq!(labels.get("ai.hanzo.org").map(String::as_str), Some(a));
    assert_eq!(net.driver.as_deref(), Some("bridge"));
}

#[tokio::test]
async fn ensure_network_is_idempotent_even_when_concurrent() {
    if !docker_enabled() {
        return;
    }
    let t = target().await;
    let g = OrgGuard::new(1);
    let org = g.org(0);
    let ids = futures_util::future::join_all((0..4).map(|_| t.ensure_network_id(org))).await;
    let ids: Vec<String> = ids.into_iter().map(Result::unwrap).collect();
    assert!(ids.iter().all(|i| i == &ids[0]), "{ids:?}");
    // A second target (like a second server process) racing on the same name.
    let t2 = DockerTarget::connect().unwrap().with_scope(&test_scope());
    let (x, y) = tokio::join!(t.ensure_network_id(org), t2.ensure_network_id(org));
    assert_eq!(x.unwrap(), y.unwrap());
    let all = t.client().list_networks(None).await.unwrap();
    let same = all
        .iter()
        .filter(|n| n.name.as_deref() == Some(network_name(org).as_str()))
        .count();
    assert_eq!(same, 1);
    assert!(t.ensure_network("bad name").await.is_err());
}

#[tokio::test]
async fn health_checks_pass_and_fail_against_real_instances() {
    if !docker_enabled() {
        return;
    }
    let t = target().await;
    let g = OrgGuard::new(1);
    let org = g.org(0);
    // Boots in about a second, like a real app.
    let mut spec = web_spec(org, &format!("hz-{org}-slow"), "d");
    spec.command = Some(vec![
        "sh".into(),
        "-c".into(),
        "sleep 1; exec python3 -m http.server 8000".into(),
    ]);
    let i = t.start(&spec).await.unwrap();
    let ip = i.address.unwrap();
    let started = Instant::now();
    wait_healthy(
        || http_check(ip, 8000, "/", Duration::from_secs(1)),
        Duration::from_millis(100),
        Duration::from_secs(20),
    )
    .await
    .unwrap();
    println!("healthy after {:?}", started.elapsed());

    let err = http_check(ip, 8000, "/missing", Duration::from_secs(2))
        .await
        .unwrap_err();
    assert!(err.contains("HTTP 404"), "{err}");
    tcp_check(ip, 8000, Duration::from_secs(2)).await.unwrap();
    let err = tcp_check(ip, 8001, Duration::from_secs(2))
        .await
        .unwrap_err();
    assert!(err.contains("TCP connect"), "{err}");
    exec_check(&t, &i.id, &["true".to_string()], Duration::from_secs(10))
        .await
        .unwrap();
    let err = exec_check(
        &t,
        &i.id,
        &["sh".into(), "-c".into(), "echo not-ready; exit 2".into()],
        Duration::from_secs(10),
    )
    .await
    .unwrap_err();
    assert!(err.contains("code 2") && err.contains("not-ready"), "{err}");
    let err = exec_check(
        &t,
        &i.id,
        &["sleep".into(), "5".into()],
        Duration::from_millis(300),
    )
    .await
    .unwrap_err();
    assert!(err.contains("did not finish"), "{err}");

    // A deadline that passes reports the last reason.
    let err = wait_healthy(
        || http_check(ip, 8000, "/missing", Duration::from_millis(500)),
        Duration::from_millis(100),
        Duration::from_millis(500),
    )
    .await
    .unwrap_err();
    assert!(
        err.contains("HTTP 404") && err.contains("attempts"),
        "{err}"
    );
}

#[tokio::test]
async fn images_are_found_or_reported_missing() {
    if !docker_enabled() {
        return;
    }
    let t = target().await;
    let id = t.ensure_image(&image()).await.unwrap();
    assert!(id.starts_with("sha256:"), "{id}");
    assert_eq!(
        t.image_id("hanzo-test/never-built:nope").await.unwrap(),
        None
    );
    let err = t
        .ensure_image("127.0.0.1:1/hanzo-test/never-built:nope")
        .await
        .unwrap_err();
    assert!(matches!(err, RuntimeError::ImageMissing { .. }), "{err:?}");
    println!("missing image: {err}");
}

#[tokio::test]
async fn a_crash_loop_ends_exited_with_its_restart_count() {
    if !docker_enabled() {
        return;
    }
    let t = target().await;
    let g = OrgGuard::new(1);
    let org = g.org(0);
    let mut spec = web_spec(org, &format!("hz-{org}-flaky"), "d");
    // Survives the start check, then crashes every time.
    spec.command = Some(vec![
        "sh".into(),
        "-c".into(),
        "sleep 0.6; echo dying; exit 1".into(),
    ]);
    let i = t.start(&spec).await.unwrap();
    assert_eq!(i.restart_count, 0);
    let sel = Selector {
        org: Some(org.to_string()),
        ..Default::default()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let last = loop {
        let list = t.list(&sel).await.unwrap();
        let inst = list.into_iter().next().unwrap();
        if inst.state == InstanceState::Exited
            && inst.restart_count >= hanzo_runtime::docker::RESTART_MAX_RETRIES
        {
            break inst;
        }
        assert!(Instant::now() < deadline, "still not given up: {inst:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    println!("crash loop observed as: {last:?}");
    assert_eq!(last.exit_code, Some(1));
    assert_eq!(
        last.restart_count,
        hanzo_runtime::docker::RESTART_MAX_RETRIES
    );
    assert!(
        t.logs(&last.id, 50)
            .await
            .unwrap()
            .iter()
            .filter(|l| l.as_str() == "dying")
            .count()
            >= 3
    );
}

#[tokio::test]
async fn restart_keeps_the_instance_and_upstream_follows_its_address() {
    if !docker_enabled() {
        return;
    }
    let t = target().await;
    let g = OrgGuard::new(1);
    let org = g.org(0);
    let i = t
        .start(&web_spec(org, &format!("hz-{org}-r"), "d"))
        .await
        .unwrap();
    let up = i.upstream().unwrap();
    assert_eq!(up, format!("http://{}:8000", i.address.unwrap()));
    t.restart(&i.id, Duration::from_secs(5)).await.unwrap();
    let after = t.inspect(&i.id).await.unwrap().unwrap();
    assert_eq!(after.id, i.id);
    assert!(after.is_up());
    until_http_ok(after.address.unwrap(), 8000).await;
    assert!(
        t.restart("hz-never-existed", Duration::from_secs(1))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn starting_an_image_the_engine_lacks_is_image_missing() {
    if !docker_enabled() {
        return;
    }
    let t = target().await;
    let g = OrgGuard::new(1);
    let org = g.org(0);
    let mut spec = web_spec(org, &format!("hz-{org}-noimg"), "d");
    spec.image = "hanzo-test/never-built:nope".into();
    let err = t.start(&spec).await.unwrap_err();
    assert!(matches!(err, RuntimeError::ImageMissing { .. }), "{err:?}");
    assert!(
        t.list(&Selector {
            org: Some(org.to_string()),
            ..Default::default()
        })
        .await
        .unwrap()
        .is_empty()
    );
}

#[tokio::test]
async fn scopes_keep_installations_apart() {
    if !docker_enabled() {
        return;
    }
    let t = target().await;
    let g = OrgGuard::new(1);
    let org = g.org(0);
    let spec = web_spec(org, &format!("hz-{org}-scoped"), "d");
    let i = t.start(&spec).await.unwrap();
    let other = DockerTarget::connect()
        .unwrap()
        .with_scope("some-other-installation");
    let sel = Selector {
        org: Some(org.to_string()),
        ..Default::default()
    };
    assert!(other.list(&sel).await.unwrap().is_empty());
    let err = other.start(&spec).await.unwrap_err();
    assert!(
        err.to_string().contains("another Hanzo installation"),
        "{err}"
    );
    assert_eq!(t.list(&sel).await.unwrap().len(), 1);
    assert_eq!(t.list(&sel).await.unwrap()[0].id, i.id);
}
