//! The main job end to end on one server, through the real Docker Engine,
//! Traefik and registry: deploy v1, v2, a v3 that fails its health check, roll
//! back to v1, restart the server — with a client sending requests through
//! Traefik the whole time and not one of them failing.

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

/// Sends requests through Traefik until stopped (at most 15 minutes or 500k
/// requests), counting answers by body and every failure with its reason.
struct Load {
    stop: Arc<AtomicBool>,
    stats: Arc<Mutex<Stats>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

#[derive(Default, Debug)]
struct Stats {
    sent: u64,
    by_body: BTreeMap<String, u64>,
    failures: Vec<String>,
    last_body: String,
}

impl Load {
    fn start(url: String, host: String) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Mutex::new(Stats::default()));
        let (s2, st2) = (stop.clone(), stats.clone());
        let handle = std::thread::spawn(move || {
            let started = Instant::now();
            while !s2.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(900) {
                let r = http_get(&url, Some(&host));
                let mut st = st2.lock().expect("stats");
                st.sent += 1;
                match r {
                    Ok((200, body)) => {
                        *st.by_body.entry(body.trim().to_string()).or_default() += 1;
                        st.last_body = body.trim().to_string();
                    }
                    Ok((code, body)) => st.failures.push(format!("HTTP {code}: {}", body.trim())),
                    Err(e) => st.failures.push(e),
                }
                if st.sent >= 500_000 {
                    break;
                }
            }
        });
        Load {
            stop,
            stats,
            handle: Some(handle),
        }
    }

    fn last_body(&self) -> String {
        self.stats.lock().expect("stats").last_body.clone()
    }

    fn finish(mut self) -> Stats {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        std::mem::take(&mut *self.stats.lock().expect("stats"))
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn deploy_ok(p: &Platform, app: &str) -> String {
    let out = p.cli(&["deploy", app]);
    assert!(
        out.status.success(),
        "hanzo deploy {app} failed ({:?}):\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

fn status_json(p: &Platform, app: &str) -> Value {
    let out = p.cli(&["status", app, "--json"]);
    assert!(out.status.success(), "hanzo status: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).expect("status --json is JSON")
}

/// Polls until the app answers through Traefik with a body containing `want`.
fn wait_serving(p: &Platform, app: &str, want: &str) {
    wait_for(
        &format!("{app} to answer {want}"),
        Duration::from_secs(30),
        || {
            p.get_app(app, "/")
                .ok()
                .filter(|(c, b)| *c == 200 && b.contains(want))
        },
    );
}

#[test]
fn deploy_update_failed_health_check_rollback_and_restart_without_a_failed_request() {
    if !services_available() {
        return;
    }
    let mut p = Platform::start("e2e");
    let repo = Repo::from_example("node-hello", &p.org);
    let repo_path = repo.path().display().to_string();

    let out = p.cli(&[
        "apps", "create", "--name", "hello", "--org", &p.org, "--repo", &repo_path, "--branch",
        "main",
    ]);
    assert!(out.status.success(), "apps create: {}", stderr(&out));

    // v1
    let printed = deploy_ok(&p, "hello");
    assert!(
        printed.contains("is running"),
        "deploy prints the outcome:\n{printed}"
    );
    wait_serving(&p, "hello", "v1");
    let load = Load::start(
        format!("http://127.0.0.1:{}/", p.http_port),
        p.host("hello"),
    );

    // v2
    repo.edit("server.js", |t| {
        t.replace("const VERSION = \"v1\"", "const VERSION = \"v2\"")
    });
    repo.commit("second version");
    deploy_ok(&p, "hello");
    wait_serving(&p, "hello", "v2");

    // v3 fails its health check: marked failed, v2 keeps answering.
    repo.edit("server.js", |t| {
        t.replace("const VERSION = \"v2\"", "const VERSION = \"v3\"")
            .replace("const HEALTHY = true", "const HEALTHY = false")
    });
    repo.commit("third version, broken health check");
    let out = p.cli(&["deploy", "hello"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a failed deployment exits 1:\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("health check"),
        "the failure names the health check:\n{}",
        stderr(&out)
    );
    let (code, body) = p.get_app("hello", "/").expect("v2 still answers");
    assert_eq!(code, 200);
    assert!(
        body.contains("v2"),
        "v2 keeps serving after the failed deploy, got {body}"
    );

    // Roll back: the previous good deployment before v2 is v1.
    let out = p.cli(&["rollback", "hello"]);
    assert!(
        out.status.success(),
        "rollback: {}\n{}",
        stdout(&out),
        stderr(&out)
    );
    wait_serving(&p, "hello", "v1");

    // History and events as the spec describes them.
    let st = status_json(&p, "hello");
    let history = st["deployments"].as_array().expect("history");
    let statuses: Vec<&str> = history
        .iter()
        .map(|d| d["status"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        statuses,
        ["running", "failed", "rolled_back", "superseded"],
        "newest first"
    );
    let current = &st["currentDeployment"];
    assert_eq!(current["number"], 4);
    assert!(
        current["imageTag"]
            .as_str()
            .unwrap_or("")
            .contains(&format!("{}-hello:", p.org))
    );
    assert_eq!(current["gitMessage"], "first version");
    assert_eq!(current["gitCommit"].as_str().map(str::len), Some(40));
    assert_eq!(current["deployedBy"], "admin");
    assert!(
        history[1]["error"]
            .as_str()
            .unwrap_or("")
            .contains("health check")
    );
    for d in history {
        for key in [
            "id",
            "appId",
            "imageTag",
            "gitCommit",
            "gitMessage",
            "status",
            "deployedBy",
            "startedAt",
            "completedAt",
            "buildLogs",
            "url",
        ] {
            assert!(d.get(key).is_some(), "deployment has {key}: {d}");
        }
    }
    let events_of = |id: &str| -> Vec<String> {
        let out = std::process::Command::new("curl")
            .args([
                "-fsS",
                "-H",
                &format!("Authorization: Bearer {}", p.token),
                &format!("{}/api/v1/deployments/{id}/events", p.api()),
            ])
            .output()
            .expect("curl");
        let v: Value = serde_json::from_slice(&out.stdout).expect("events JSON");
        v.as_array()
            .expect("array")
            .iter()
            .map(|e| e["type"].as_str().unwrap_or("").to_string())
            .collect()
    };
    let first = events_of(history[3]["id"].as_str().expect("id"));
    for e in [
        "build_started",
        "build_completed",
        "deploy_started",
        "health_check_passed",
        "deploy_completed",
    ] {
        assert!(
            first.contains(&e.to_string()),
            "v1 events include {e}: {first:?}"
        );
    }
    let failed = events_of(history[1]["id"].as_str().expect("id"));
    assert!(
        failed.contains(&"health_check_failed".to_string())
            && failed.contains(&"deploy_failed".to_string()),
        "{failed:?}"
    );
    let rb = events_of(history[0]["id"].as_str().expect("id"));
    assert!(
        rb.contains(&"rollback_initiated".to_string())
            && rb.contains(&"rollback_completed".to_string()),
        "{rb:?}"
    );

    // Records survive a restart of the server, and the app keeps serving through it.
    p.restart();
    let again = status_json(&p, "hello");
    assert_eq!(
        again["deployments"], st["deployments"],
        "deployment records survive a restart"
    );
    wait_serving(&p, "hello", "v1");
    assert!(load.last_body().contains("v1"));

    let stats = load.finish();
    eprintln!(
        "load through Traefik: {} requests sent, answers {:?}, {} failed",
        stats.sent,
        stats.by_body,
        stats.failures.len()
    );
    assert!(
        stats.sent > 50,
        "the load generator ran ({} requests)",
        stats.sent
    );
    assert!(
        stats.failures.is_empty(),
        "no request may fail; failures: {:?}",
        &stats.failures[..stats.failures.len().min(10)]
    );
    assert!(
        stats.by_body.keys().any(|b| b.contains("v2"))
            && stats.by_body.keys().any(|b| b.contains("v1"))
    );
    assert!(
        !stats.by_body.keys().any(|b| b.contains("v3")),
        "the unhealthy v3 never received traffic"
    );
}
