//! How fast a prebuilt image goes live, and how fast a rollback does, measured
//! side by side in one run against the real platform (Docker, Traefik, the
//! registry), next to what a plain `docker run` of the same image needs until
//! the app answers — the floor no platform can beat. The platform's own share
//! is the difference. Prints figures; asserts nothing about time.
//!
//! Run: `scripts/bench` (starts the services), or with the services running:
//! `HANZO_TEST_DOCKER=1 HANZO_TEST_REGISTRY=127.0.0.1:5000 cargo bench -p hanzo-cli --bench deploy`

#[path = "../tests/support/mod.rs"]
mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

const ROUNDS: usize = 5;
// Keep the server log of the last run for a look at where the time goes.
const KEEP_LOG: &str = "/tmp/hanzo-bench-server.log";

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Seconds from `start` until the app answers through Traefik with `want`,
/// polling every 10 ms from the moment the command was issued.
fn time_until_serving(p: &Platform, want: &str, start: Instant, run: impl FnOnce()) -> f64 {
    let (tx, rx) = std::sync::mpsc::channel();
    let url = format!("http://127.0.0.1:{}/", p.http_port);
    let host = p.host("hello");
    let want = want.to_string();
    let poller = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            if let Ok((200, body)) = http_get(&url, Some(&host))
                && body.contains(&want)
            {
                let _ = tx.send(start.elapsed().as_secs_f64());
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    run();
    let t = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("the new version answered");
    let _ = poller.join();
    t
}

/// A plain `docker run` of the image on the org's network, with the same
/// limits as the manifest (1 CPU, 128 MiB), until it answers.
fn plain_run(org: &str, image: &str) -> f64 {
    let name = unique("bench-plain-");
    let start = Instant::now();
    let out = Command::new("docker")
        .args([
            "run",
            "-d",
            "--name",
            &name,
            "--cpus",
            "1",
            "--memory",
            "128m",
            "--network",
            &format!("hanzo-org-{org}"),
            "-e",
            "PORT=3000",
            image,
        ])
        .output()
        .expect("docker run");
    assert!(
        out.status.success(),
        "docker run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ip = wait_for("the container's address", Duration::from_secs(30), || {
        let o = Command::new("docker")
            .args([
                "inspect",
                "-f",
                "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                &name,
            ])
            .output()
            .ok()?;
        let ip = String::from_utf8_lossy(&o.stdout).trim().to_string();
        (!ip.is_empty()).then_some(ip)
    });
    wait_for(
        "the plain container to answer",
        Duration::from_secs(60),
        || {
            http_get(&format!("http://{ip}:3000/health"), None)
                .ok()
                .filter(|(c, _)| *c == 200)
        },
    );
    let t = start.elapsed().as_secs_f64();
    let _ = Command::new("docker").args(["rm", "-f", &name]).output();
    t
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("deploy: bench");
        return;
    }
    if !services_available() {
        return;
    }
    let p = Platform::start("bench");
    let repo = Repo::from_example("node-hello", &p.org);
    // One instance with a whole CPU: node-hello then boots in well under a second.
    repo.edit("hanzo.yaml", |t| {
        t.replace("instances: 2", "instances: 1")
            .replace("cpu: \"0.25\"", "cpu: \"1\"")
    });
    repo.commit("one instance");
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
    let tags: Vec<String> = ["v1", "v2"]
        .iter()
        .map(|v| {
            repo.edit("server.js", |t| {
                let start =
                    t.find("const VERSION = \"").expect("VERSION") + "const VERSION = \"".len();
                let end = start + t[start..].find('"').expect("quote");
                format!("{}{v}{}", &t[..start], &t[end..])
            });
            repo.commit(v);
            let out = p.cli(&["deploy", "hello"]);
            assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
            let st: Value = serde_json::from_slice(&p.cli(&["status", "hello", "--json"]).stdout)
                .expect("json");
            st["currentDeployment"]["imageTag"]
                .as_str()
                .expect("tag")
                .to_string()
        })
        .collect();

    let (mut deploy, mut rollback, mut plain, mut deploy_cmd) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        // v2 serves now. Deploy the prebuilt v1 image…
        let start = Instant::now();
        let mut cmd_done = 0.0;
        deploy.push(time_until_serving(&p, "v1", start, || {
            let out = p.cli(&["deploy", "hello", "--image", &tags[0]]);
            assert!(out.status.success(), "round {round}: {}", stderr(&out));
            cmd_done = start.elapsed().as_secs_f64();
        }));
        deploy_cmd.push(cmd_done);
        // …then roll back to v2.
        let start = Instant::now();
        rollback.push(time_until_serving(&p, "v2", start, || {
            let out = p.cli(&["rollback", "hello"]);
            assert!(out.status.success(), "round {round}: {}", stderr(&out));
        }));
        plain.push(plain_run(&p.org, &tags[0]));
    }
    let _ = std::fs::write(KEEP_LOG, p.server_log());
    let (d, r, b, dc) = (
        median(deploy),
        median(rollback),
        median(plain),
        median(deploy_cmd),
    );
    println!("deploy benchmark ({ROUNDS} rounds, medians, node-hello, 1 instance)");
    println!(
        "  plain `docker run` until the app answers      {b:>7.3} s  (container start + app boot)"
    );
    println!(
        "  `hanzo deploy --image` until the new version  {d:>7.3} s  platform share {:>6.3} s  ({:.2}× plain)",
        d - b,
        d / b
    );
    println!(
        "  `hanzo deploy --image` command returns        {dc:>7.3} s  (after the old instance drained and stopped)"
    );
    println!(
        "  `hanzo rollback` until the old version        {r:>7.3} s  platform share {:>6.3} s  ({:.2}× plain)",
        r - b,
        r / b
    );
    println!(
        "  target: rollback serving in under 2 s: {} ({r:.3} s; the app itself needs {b:.3} s from container start to first answer)",
        if r < 2.0 { "met" } else { "NOT met" }
    );
}
