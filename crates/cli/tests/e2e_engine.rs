//! The deploy engine under load: ten rolling deploys of a two-instance app, a
//! failing deploy, a rollback and a scale to zero and back, with zero failed
//! requests outside the scale-to-zero window; and a server killed (SIGKILL) at
//! several points of a deploy, which on restart finishes or rolls back with no
//! orphaned container and no deployment left in flight.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

#[derive(Default, Debug)]
struct Counts {
    sent: u64,
    ok: u64,
    failed: Vec<String>,
    failed_in_window: u64,
}

/// Sends requests through Traefik until stopped; failures while `window` is
/// set (the scale-to-zero period) are counted apart.
fn load(
    p: &Platform,
    app: &str,
    stop: Arc<AtomicBool>,
    window: Arc<AtomicBool>,
) -> (std::thread::JoinHandle<()>, Arc<Mutex<Counts>>) {
    let counts = Arc::new(Mutex::new(Counts::default()));
    let c2 = counts.clone();
    let url = format!("http://127.0.0.1:{}/", p.http_port);
    let host = p.host(app);
    let handle = std::thread::spawn(move || {
        let started = Instant::now();
        while !stop.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(900) {
            let in_window = window.load(Ordering::SeqCst);
            let r = http_get(&url, Some(&host));
            let mut c = c2.lock().expect("counts");
            c.sent += 1;
            match r {
                Ok((200, _)) => c.ok += 1,
                other if in_window || window.load(Ordering::SeqCst) => {
                    let _ = other;
                    c.failed_in_window += 1;
                }
                Ok((code, body)) => c.failed.push(format!("HTTP {code}: {}", body.trim())),
                Err(e) => c.failed.push(e),
            }
            if c.sent >= 500_000 {
                break;
            }
        }
    });
    (handle, counts)
}

fn status(p: &Platform, app: &str) -> Value {
    let out = p.cli(&["status", app, "--json"]);
    assert!(out.status.success(), "status: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).expect("json")
}

fn running_instances(p: &Platform, app: &str) -> Vec<Value> {
    status(p, app)["instancesObserved"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|i| i["state"] == "running")
        .collect()
}

#[test]
fn ten_rolling_deploys_a_failure_a_rollback_and_scale_to_zero_under_load() {
    if !services_available() {
        return;
    }
    let p = Platform::start("eng");
    let repo = Repo::from_example("node-hello", &p.org);
    let out = p.cli(&[
        "apps",
        "create",
        "--name",
        "hello",
        "--org",
        &p.org,
        "--repo",
        &repo.path().display().to_string(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));

    // Two images to alternate between, built once.
    let out = p.cli(&["deploy", "hello"]);
    assert!(
        out.status.success(),
        "v1: {}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let v1 = status(&p, "hello")["currentDeployment"]["imageTag"]
        .as_str()
        .expect("tag")
        .to_string();
    repo.edit("server.js", |t| {
        t.replace("const VERSION = \"v1\"", "const VERSION = \"v2\"")
    });
    repo.commit("v2");
    let out = p.cli(&["deploy", "hello"]);
    assert!(
        out.status.success(),
        "v2: {}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let v2 = status(&p, "hello")["currentDeployment"]["imageTag"]
        .as_str()
        .expect("tag")
        .to_string();
    assert_ne!(v1, v2);

    let stop = Arc::new(AtomicBool::new(false));
    let window = Arc::new(AtomicBool::new(false));
    let (handle, counts) = load(&p, "hello", stop.clone(), window.clone());

    for round in 0..10 {
        let (image, version) = if round % 2 == 0 {
            (&v1, "v1")
        } else {
            (&v2, "v2")
        };
        let out = p.cli(&["deploy", "hello", "--image", image]);
        assert!(
            out.status.success(),
            "round {round}: {}\n{}",
            stdout(&out),
            stderr(&out)
        );
        let (code, body) = p.get_app("hello", "/").expect("answer");
        assert_eq!(code, 200);
        assert!(
            body.contains(version),
            "round {round} serves {version}: {body}"
        );
        // The old instances leave once drained; then exactly two remain.
        wait_for(
            &format!("two instances after round {round}"),
            Duration::from_secs(30),
            || (running_instances(&p, "hello").len() == 2).then_some(()),
        );
    }

    // A deploy whose instances never become healthy: failed, the old ones keep serving.
    repo.edit("server.js", |t| {
        t.replace("const HEALTHY = true", "const HEALTHY = false")
    });
    repo.commit("broken health");
    let out = p.cli(&["deploy", "hello"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    wait_for(
        "two instances after the failed deploy",
        Duration::from_secs(30),
        || (running_instances(&p, "hello").len() == 2).then_some(()),
    );

    // Roll back to the deployment before the current one: v2 is current, so v1.
    let out = p.cli(&["rollback", "hello"]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let st = status(&p, "hello");
    assert_eq!(
        st["currentDeployment"]["imageTag"],
        Value::String(v1.clone()),
        "rolled back to the previous image"
    );
    // And forward again to a tag, then back to v1 by tag.
    let out = p.cli(&[
        "rollback",
        "hello",
        "--to",
        v2.rsplit(':').next().expect("tag"),
    ]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert_eq!(
        status(&p, "hello")["currentDeployment"]["imageTag"],
        Value::String(v2.clone())
    );
    let out = p.cli(&[
        "rollback",
        "hello",
        "--to",
        v1.rsplit(':').next().expect("tag"),
    ]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    wait_for("v1 after rollback --to", Duration::from_secs(20), || {
        p.get_app("hello", "/")
            .ok()
            .filter(|(_, b)| b.contains("v1"))
    });

    // Scale to zero: stopped, nothing routed. Then back to two.
    window.store(true, Ordering::SeqCst);
    let out = p.cli(&["scale", "hello", "0"]);
    assert!(out.status.success(), "{}", stderr(&out));
    wait_for("no instance after scale 0", Duration::from_secs(60), || {
        running_instances(&p, "hello").is_empty().then_some(())
    });
    wait_for("404 after scale 0", Duration::from_secs(30), || {
        p.get_app("hello", "/").ok().filter(|(c, _)| *c == 404)
    });
    assert_eq!(status(&p, "hello")["status"], "stopped");
    let out = p.cli(&["scale", "hello", "2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    wait_for(
        "two instances after scale 2",
        Duration::from_secs(60),
        || (running_instances(&p, "hello").len() == 2).then_some(()),
    );
    wait_for("answers after scale 2", Duration::from_secs(30), || {
        p.get_app("hello", "/").ok().filter(|(c, _)| *c == 200)
    });
    // Give the load generator a moment of steady state after the window.
    std::thread::sleep(Duration::from_millis(500));
    window.store(false, Ordering::SeqCst);
    let settle = Instant::now();
    wait_for(
        "more requests after the window",
        Duration::from_secs(10),
        || (settle.elapsed() > Duration::from_secs(2)).then_some(()),
    );

    stop.store(true, Ordering::SeqCst);
    let _ = handle.join();
    let c = counts.lock().expect("counts");
    eprintln!(
        "engine load: {} requests, {} ok, {} failed outside the scale-to-zero window, {} during it",
        c.sent,
        c.ok,
        c.failed.len(),
        c.failed_in_window
    );
    assert!(c.sent > 100, "load ran");
    assert!(
        c.failed.is_empty(),
        "failures outside the window: {:?}",
        &c.failed[..c.failed.len().min(10)]
    );
}

/// Containers of this platform's scope, by name.
fn containers(scope: &str) -> Vec<String> {
    let out = std::process::Command::new("docker")
        .args([
            "ps",
            "-a",
            "--filter",
            &format!("label=ai.hanzo.scope={scope}"),
            "--format",
            "{{.Names}} {{.State}}",
        ])
        .output()
        .expect("docker ps");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn a_server_killed_mid_deploy_finishes_or_rolls_back_after_restart() {
    if !services_available() {
        return;
    }
    let mut p = Platform::start("kill");
    let repo = Repo::from_example("node-hello", &p.org);
    // Slow boot, so that the kill can land while instances start.
    repo.edit("server.js", |t| {
        t.replace(
            "server.listen(port,",
            "setTimeout(() => server.listen(port,",
        )
        .replace(
            "listening on ${port}`));",
            "listening on ${port}`)), 1500);",
        )
    });
    repo.commit("slow boot");
    let out = p.cli(&[
        "apps",
        "create",
        "--name",
        "hello",
        "--org",
        &p.org,
        "--repo",
        &repo.path().display().to_string(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = p.cli(&["deploy", "hello"]);
    assert!(
        out.status.success(),
        "first deploy: {}\n{}",
        stdout(&out),
        stderr(&out)
    );

    for (round, kill_when) in ["building", "deploying", "deploying-late"]
        .iter()
        .enumerate()
    {
        let version = format!("r{round}");
        repo.edit("server.js", |t| {
            let start = t.find("const VERSION = \"").expect("VERSION") + "const VERSION = \"".len();
            let end = start + t[start..].find('"').expect("quote");
            format!("{}{version}{}", &t[..start], &t[end..])
        });
        repo.commit(&format!("round {round}"));
        let out = p.cli(&["deploy", "hello", "--no-follow", "--json"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let d: Value = serde_json::from_slice(&out.stdout).expect("json");
        let id = d["id"].as_str().expect("id").to_string();
        let want = kill_when.trim_end_matches("-late");
        wait_for(
            &format!("deployment {want}"),
            Duration::from_secs(120),
            || {
                let v: Value =
                    serde_json::from_slice(&p.cli(&["status", "hello", "--json"]).stdout).ok()?;
                let s = v["deployments"]
                    .as_array()?
                    .iter()
                    .find(|x| x["id"] == id.as_str())?["status"]
                    .as_str()?
                    .to_string();
                (s == want).then_some(())
            },
        );
        if kill_when.ends_with("-late") {
            // Let the first new instance come up before the kill.
            std::thread::sleep(Duration::from_millis(2000));
        }
        p.kill_server();
        p.start_server();
        // Finished or rolled back: nothing stays in flight, and the app serves one version.
        let final_status = wait_for(
            "the deployment to settle after restart",
            Duration::from_secs(180),
            || {
                let v: Value =
                    serde_json::from_slice(&p.cli(&["status", "hello", "--json"]).stdout).ok()?;
                let s = v["deployments"]
                    .as_array()?
                    .iter()
                    .find(|x| x["id"] == id.as_str())?["status"]
                    .as_str()?
                    .to_string();
                (s == "running" || s == "failed").then_some(s)
            },
        );
        assert_eq!(
            final_status, "running",
            "round {round}: a healthy deploy finishes after the restart"
        );
        let st = status(&p, "hello");
        for d in st["deployments"].as_array().expect("history") {
            let s = d["status"].as_str().unwrap_or("");
            assert!(
                !["queued", "building", "pushing", "deploying"].contains(&s),
                "round {round}: {s} left in flight"
            );
        }
        // No orphan: exactly the current deployment's instances exist, all running.
        let current = st["currentDeployment"]["id"]
            .as_str()
            .expect("current")
            .to_string();
        wait_for(
            "only the current instances to remain",
            Duration::from_secs(60),
            || {
                let names = containers(&p.org);
                let inst = running_instances(&p, "hello");
                let ok = inst.len() == 2
                    && inst.iter().all(|i| i["deploymentId"] == current.as_str())
                    && names.len() == 2
                    && names.iter().all(|n| n.ends_with(" running"));
                ok.then_some(())
            },
        );
        let (code, body) = p.get_app("hello", "/").expect("answer");
        assert_eq!(code, 200);
        assert!(
            body.contains(&version),
            "round {round} serves {version}: {body}"
        );
    }
}

#[test]
fn workers_run_beside_the_web_service_and_cron_runs_on_its_schedule() {
    if !services_available() {
        return;
    }
    let p = Platform::start("svc");
    let repo = Repo::from_example("docker-hello", &p.org);
    repo.edit("hanzo.yaml", |_| {
        format!(
            r#"name: jobs
org: {org}
services:
  - type: web
    port: 8080
    healthcheck:
      path: /healthz
  - type: worker
    command: sleep 100000
    healthcheck:
      exec: ["sh", "-c", "test -d /proc/1"]
  - type: cron
    command: echo cron-ran-once && exit 3
    schedule: "* * * * *"
"#,
            org = p.org
        )
    });
    repo.commit("web, worker and cron");
    p.create_app("jobs", &repo);
    let out = p.cli(&["deploy", "jobs"]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));

    // One web and one worker instance, both running; only the web one is routed.
    let st = status(&p, "jobs");
    let inst = st["instancesObserved"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let names: Vec<&str> = inst.iter().filter_map(|i| i["name"].as_str()).collect();
    assert!(names.iter().any(|n| n.contains("-web-")), "{names:?}");
    assert!(names.iter().any(|n| n.contains("-worker-")), "{names:?}");
    let (code, body) = p.get_app("jobs", "/").expect("web answers");
    assert_eq!(code, 200, "{body}");

    // The cron service fires at the next minute: its run is recorded with the
    // exit code and output, and its container is gone afterwards.
    let run = wait_for("a finished cron run", Duration::from_secs(150), || {
        let runs = p.api_get("/api/v1/apps/jobs/cron-runs");
        runs.as_array()?
            .iter()
            .find(|r| r["status"] == "failed")
            .cloned()
    });
    assert_eq!(run["exitCode"], 3, "{run}");
    assert_eq!(run["service"], "cron");
    assert!(
        run["logTail"]
            .as_str()
            .unwrap_or("")
            .contains("cron-ran-once"),
        "{run}"
    );
    wait_for(
        "the run's container to be removed",
        Duration::from_secs(30),
        || {
            let names = containers(&p.org);
            (!names.iter().any(|n| n.contains("-cron-run-"))).then_some(())
        },
    );
}
