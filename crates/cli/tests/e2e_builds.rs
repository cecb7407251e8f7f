//! The build pipeline end to end through the real platform (the `hanzo` server,
//! Docker Engine, registry and Traefik): every runtime built, pushed and
//! answering; the build queue (concurrency limit, one build per application,
//! cancel, timeout, a server killed mid-build); limits (no network, memory);
//! secrets (scrubbed everywhere, history check); registry credentials; live logs.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use support::*;

const BUILD_WAIT: Duration = Duration::from_secs(600);
const DONE: &[&str] = &[
    "running",
    "failed",
    "cancelled",
    "superseded",
    "rolled_back",
];

fn s(v: &Value) -> String {
    v.as_str().unwrap_or("").to_string()
}

/// The docker-hello example as application `name`: `steps` are added after its
/// `COPY app.py .` and `yaml` at the end of its hanzo.yaml.
#[must_use = "the repository is deleted when dropped"]
fn docker_app(p: &Platform, name: &str, steps: &str, yaml: &str) -> Repo {
    let repo = Repo::from_example("docker-hello", &p.org);
    repo.edit("hanzo.yaml", |t| {
        format!(
            "{}{yaml}",
            t.replace("name: docker-hello", &format!("name: {name}"))
        )
    });
    if !steps.is_empty() {
        repo.edit("Dockerfile", |t| {
            t.replace("COPY app.py .", &format!("COPY app.py .\n{steps}"))
        });
    }
    repo.commit(&format!("{name} as a test application"));
    p.create_app(name, &repo);
    repo
}

/// Timestamp of the first event of `kind`.
fn event_at(p: &Platform, id: &str, kind: &str) -> chrono::DateTime<chrono::FixedOffset> {
    p.events(id)
        .into_iter()
        .find(|(t, _, _)| t == kind)
        .map(|(_, _, at)| at)
        .unwrap_or_else(|| panic!("deployment {id} has no {kind} event: {:?}", p.events(id)))
}

fn wait_running(p: &Platform, id: &str) -> Value {
    let d = p.wait_status(id, DONE, BUILD_WAIT);
    assert_eq!(
        s(&d["status"]),
        "running",
        "deployment {id}: {d}\nlog:\n{}",
        p.build_log(id)
    );
    d
}

fn wait_failed(p: &Platform, id: &str) -> Value {
    let d = p.wait_status(id, DONE, BUILD_WAIT);
    assert_eq!(
        s(&d["status"]),
        "failed",
        "deployment {id}: {d}\nlog:\n{}",
        p.build_log(id)
    );
    d
}

fn wait_answers(p: &Platform, app: &str, want: &str) {
    wait_for(
        &format!("{app} to answer {want:?} through Traefik"),
        Duration::from_secs(60),
        || {
            p.get_app(app, "/")
                .ok()
                .filter(|(c, b)| *c == 200 && b.contains(want))
        },
    );
}

/// Every `Step N/M :` line starts a line of its own (log lines never run together).
fn assert_one_step_per_line(log: &str) {
    for line in log.lines() {
        let steps = line.match_indices("Step ").filter(|(i, _)| {
            line[i + 5..]
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_digit())
        });
        for (i, _) in steps {
            assert_eq!(i, 0, "a build step runs into the previous line: {line:?}");
        }
    }
}

fn registry() -> String {
    std::env::var("HANZO_TEST_REGISTRY").expect("HANZO_TEST_REGISTRY")
}

/// (repository path in the registry, tag) of `registry/org-app:tag`.
fn repo_and_tag(image: &str) -> (String, String) {
    let (repo, tag) = image.rsplit_once(':').expect("image:tag");
    let path = repo.split_once('/').map(|(_, p)| p).unwrap_or(repo);
    (path.to_string(), tag.to_string())
}

#[test]
fn every_runtime_builds_pushes_and_answers_through_traefik() {
    if !services_available() {
        return;
    }
    let p = Platform::start_with("rt", vec![("HANZO_BUILD_CONCURRENCY".into(), "2".into())]);
    // (example, app name, runtime family, answer)
    let examples = [
        (
            "docker-hello",
            "docker-hello",
            "docker",
            "hello from docker-hello",
        ),
        ("node-hello", "hello", "node", "hello from node-hello"),
        (
            "python-hello",
            "python-hello",
            "python",
            "hello from python-hello",
        ),
        ("go-hello", "go-hello", "go", "hello from go-hello"),
        ("rust-hello", "rust-hello", "rust", "hello from rust-hello"),
        (
            "static-hello",
            "static-hello",
            "node",
            "hello from static-hello",
        ),
    ];
    let mut repos = Vec::new();
    let mut ids = Vec::new();
    for (example, app, _, _) in examples {
        let repo = Repo::from_example(example, &p.org);
        p.create_app(app, &repo);
        ids.push(p.deploy_queued(app));
        repos.push(repo);
    }
    for ((_, app, family, answer), id) in examples.iter().zip(&ids) {
        let d = wait_running(&p, id);
        wait_answers(&p, app, answer);
        let log = p.build_log(id);
        assert!(
            log.contains(&format!("==> runtime {family} (")),
            "{app}: the log names the runtime:\n{log}"
        );
        assert_one_step_per_line(&log);
        // The digest recorded on the deployment is the one the registry serves.
        let image = s(&d["imageTag"]);
        assert!(
            image.starts_with(&format!("{}/{}-{app}:", registry(), p.org)),
            "{app}: image named by the convention: {image}"
        );
        let (path, tag) = repo_and_tag(&image);
        let digest = s(&d["imageDigest"]);
        assert!(digest.starts_with("sha256:"), "{app}: digest {digest}");
        assert_eq!(
            manifest_digest(
                &format!("http://{}/v2/{path}/manifests/{tag}", registry()),
                None
            )
            .as_deref(),
            Some(digest.as_str()),
            "{app}: the registry serves the recorded digest"
        );
    }

    // An unchanged Node application builds again from the cache: no step runs.
    let cold = {
        let id = &ids[1];
        event_at(&p, id, "build_completed") - event_at(&p, id, "build_started")
    };
    let warm_id = p.deploy_queued("hello");
    wait_running(&p, &warm_id);
    let log = p.build_log(&warm_id);
    assert!(
        log.contains("Using cache") && !log.contains("Running in"),
        "an unchanged rebuild runs no step:\n{log}"
    );
    let warm = event_at(&p, &warm_id, "build_completed") - event_at(&p, &warm_id, "build_started");
    eprintln!(
        "node-hello through the platform (clone, build, push): cold {} ms, warm {} ms",
        cold.num_milliseconds(),
        warm.num_milliseconds()
    );

    // A dependency change rebuilds from the dependency step on; the base layers stay.
    let node = &repos[1];
    node.edit("package.json", |t| {
        t.replace(
            "\"private\": true,",
            "\"private\": true,\n  \"dependencies\": {},",
        )
    });
    node.commit("declare dependencies");
    let dep_id = p.deploy_queued("hello");
    let d = wait_running(&p, &dep_id);
    let log = p.build_log(&dep_id);
    assert!(
        log.contains("Using cache") && log.contains("Running in"),
        "a dependency change reuses the steps before it and runs the rest:\n{log}"
    );
    let layers = |image: &str| -> Vec<String> {
        let out = std::process::Command::new("docker")
            .args([
                "image",
                "inspect",
                "--format",
                "{{json .RootFS.Layers}}",
                image,
            ])
            .output()
            .expect("docker image inspect");
        serde_json::from_slice(&out.stdout).unwrap_or_default()
    };
    let base = base_image_env()
        .into_iter()
        .find(|(k, _)| k == "HANZO_BASE_IMAGE_NODE_20")
        .map(|(_, v)| v)
        .expect("node-20 base image");
    let base_layers = layers(&base);
    let new_layers = layers(&s(&d["imageTag"]));
    assert!(
        !base_layers.is_empty() && new_layers.starts_with(&base_layers),
        "the new image is built on the base image's layers"
    );
    wait_answers(&p, "hello", "hello from node-hello");
}

#[test]
fn build_queue_concurrency_limit_cancel_and_timeout() {
    if !services_available() {
        return;
    }
    let p = Platform::start_with(
        "queue",
        vec![("HANZO_BUILD_CONCURRENCY".into(), "1".into())],
    );
    let slow_marker = unique("slow-step-");
    let _repo1 = docker_app(
        &p,
        "slow",
        &format!("RUN echo {slow_marker} && sleep 6"),
        "",
    );
    let _repo2 = docker_app(&p, "quick", "", "");

    // Concurrency 1: the second application waits while the first builds.
    let a = p.deploy_queued("slow");
    p.wait_status(&a, &["building"], Duration::from_secs(60));
    let b = p.deploy_queued("quick");
    let mut waited = 0;
    let deadline = Instant::now() + BUILD_WAIT;
    loop {
        let da = s(&p.deployment(&a)["status"]);
        let db = s(&p.deployment(&b)["status"]);
        if da != "building" && da != "pushing" {
            break;
        }
        assert_eq!(
            db, "queued",
            "quick must wait while slow holds the only slot"
        );
        waited += 1;
        assert!(Instant::now() < deadline, "slow never finished building");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(waited > 0);
    wait_running(&p, &a);
    wait_running(&p, &b);
    assert!(
        event_at(&p, &b, "build_started") >= event_at(&p, &a, "build_completed"),
        "quick's build started after slow's ended"
    );

    // Cancel a queued build and a running one; the slot is freed.
    let marker = unique("cancel-step-");
    let _repo3 = docker_app(&p, "long", &format!("RUN echo {marker} && sleep 300"), "");
    let c = p.deploy_queued("long");
    wait_for(
        "the long build to run its step",
        Duration::from_secs(120),
        || p.build_log(&c).contains(&marker).then_some(()),
    );
    let q = p.deploy_queued("quick");
    assert_eq!(s(&p.deployment(&q)["status"]), "queued");
    let (code, v) = p.api_call("POST", &format!("/api/v1/deployments/{q}/cancel"), None);
    assert_eq!(code, 200, "cancel a queued build: {v}");
    assert_eq!(s(&v["status"]), "cancelled");
    let (code, v) = p.api_call("POST", &format!("/api/v1/deployments/{c}/cancel"), None);
    assert_eq!(code, 202, "cancel a running build: {v}");
    let cancelled_at = Instant::now();
    let d = p.wait_status(&c, &["cancelled"], Duration::from_secs(30));
    eprintln!("running build cancelled in {:?}", cancelled_at.elapsed());
    assert!(s(&d["error"]).contains("cancelled"), "{d}");
    wait_for(
        "the cancelled build's container to be removed",
        Duration::from_secs(60),
        || (containers_with(&marker) == 0).then_some(()),
    );
    assert_eq!(s(&p.deployment(&q)["status"]), "cancelled");

    // A build past its timeout (build.timeout: 5s) is stopped, failed with the reason.
    let tmarker = unique("timeout-step-");
    let _repo4 = docker_app(
        &p,
        "overdue",
        &format!("RUN echo {tmarker} && sleep 300"),
        "\nbuild:\n  timeout: 5s\n",
    );
    let t = p.deploy_queued("overdue");
    let started = Instant::now();
    let d = wait_failed(&p, &t);
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "the timeout stopped the build ({:?})",
        started.elapsed()
    );
    let err = s(&d["error"]);
    assert!(
        err.contains("did not finish within 5 seconds") && err.contains("build.timeout"),
        "the error gives the reason and the fix: {err}"
    );
    wait_for(
        "the timed-out build's container to be removed",
        Duration::from_secs(60),
        || (containers_with(&tmarker) == 0).then_some(()),
    );
    let app: Value = p.api_get(&format!("/api/v1/apps/overdue?org={}", p.org));
    assert_eq!(s(&app["status"]), "failed", "{app}");

    // Both freed the only slot: the next build runs.
    let next = p.deploy_queued("quick");
    wait_running(&p, &next);
}

#[test]
fn builds_of_one_application_never_overlap() {
    if !services_available() {
        return;
    }
    let p = Platform::start_with(
        "serial",
        vec![("HANZO_BUILD_CONCURRENCY".into(), "2".into())],
    );
    let marker = unique("serial-step-");
    let _repo5 = docker_app(&p, "serial", &format!("RUN echo {marker} && sleep 5"), "");
    let first = p.deploy_queued("serial");
    let second = p.deploy_queued("serial");
    let in_build = |st: &str| st == "building" || st == "pushing";
    let deadline = Instant::now() + BUILD_WAIT;
    loop {
        let list = p.api_get(&format!("/api/v1/apps/serial/deployments?org={}", p.org));
        let statuses: Vec<String> = list
            .as_array()
            .expect("deployments")
            .iter()
            .map(|d| s(&d["status"]))
            .collect();
        assert!(
            statuses.iter().filter(|st| in_build(st)).count() <= 1,
            "two builds of one application at once: {statuses:?}"
        );
        if statuses.len() == 2 && statuses.iter().all(|st| DONE.contains(&st.as_str())) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "builds did not finish: {statuses:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(s(&p.deployment(&second)["status"]), "running");
    assert!(
        event_at(&p, &second, "build_started") >= event_at(&p, &first, "build_completed"),
        "the second build started after the first ended"
    );
}

#[test]
fn a_server_killed_mid_build_requeues_the_build_and_finishes_it() {
    if !services_available() {
        return;
    }
    let mut p = Platform::start("crash");
    let marker = unique("crash-step-");
    let _repo6 = docker_app(&p, "crashy", &format!("RUN echo {marker} && sleep 8"), "");
    let id = p.deploy_queued("crashy");
    wait_for(
        "the build to run its step",
        Duration::from_secs(120),
        || p.build_log(&id).contains(&marker).then_some(()),
    );
    p.kill_server();
    // The engine stops a build whose client is gone.
    wait_for(
        "the orphaned build's container to go",
        Duration::from_secs(60),
        || (containers_with(&marker) == 0).then_some(()),
    );
    p.start_server();
    let d = wait_running(&p, &id);
    let starts = p
        .events(&id)
        .iter()
        .filter(|(t, _, _)| t == "build_started")
        .count();
    assert_eq!(starts, 2, "the build ran again after the restart");
    assert!(s(&d["imageDigest"]).starts_with("sha256:"));
    let list = p.api_get(&format!("/api/v1/apps/crashy/deployments?org={}", p.org));
    for d in list.as_array().expect("deployments") {
        assert!(
            !["queued", "building", "pushing"].contains(&s(&d["status"]).as_str()),
            "nothing stays in the queue or building: {d}"
        );
    }
    wait_answers(&p, "crashy", "hello from docker-hello");
}

#[test]
fn build_limits_network_none_memory_and_secret_build_args() {
    if !services_available() {
        return;
    }
    let p = Platform::start_with(
        "limits",
        vec![(
            "HANZO_BUILD_MEMORY_BYTES".into(),
            (128 * 1024 * 1024).to_string(),
        )],
    );
    let fetch = "RUN python3 -c \"import urllib.request; urllib.request.urlopen('http://deb.debian.org/debian/', timeout=20); print('reached the mirror')\"";
    let none = "\nbuild:\n  network: none\n";
    let _repo7 = docker_app(&p, "offline", "RUN echo no network needed > /tmp/ok", none);
    let _repo8 = docker_app(&p, "needsnet", fetch, none);
    let _repo9 = docker_app(&p, "online", fetch, "");
    let _repo10 = docker_app(
        &p,
        "greedy",
        "RUN python3 -c \"x = b'a' * (512 << 20); print(len(x))\"",
        "",
    );
    let token = format!(
        "tok-{:016x}{:08x}",
        rand::random::<u64>(),
        rand::random::<u32>()
    );
    let _repo11 = docker_app(
        &p,
        "argsecret",
        "ARG NPM_TOKEN\nRUN echo installing private packages with $NPM_TOKEN",
        &format!("\nbuild:\n  args:\n    NPM_TOKEN: {token}\n"),
    );
    let ids: Vec<(String, &str)> = ["offline", "needsnet", "online", "greedy", "argsecret"]
        .into_iter()
        .map(|a| (p.deploy_queued(a), a))
        .collect();

    // network: none — a step that needs no network passes, one that needs it fails;
    // the same step passes with the default network.
    wait_running(&p, &ids[0].0);
    wait_answers(&p, "offline", "hello from docker-hello");
    let d = wait_failed(&p, &ids[1].0);
    assert!(
        s(&d["error"]).contains("urlopen") || s(&d["error"]).contains("python3 -c"),
        "the failure names the step: {d}"
    );
    wait_running(&p, &ids[2].0);
    assert!(p.build_log(&ids[2].0).contains("reached the mirror"));

    // Memory: the greedy step is killed and the reason says so.
    let d = wait_failed(&p, &ids[3].0);
    assert!(
        s(&d["error"]).contains("memory limit of 128 MiB"),
        "the error names the memory limit: {}",
        d["error"]
    );

    // A build argument named like a secret is scrubbed, and the image keeping it is rejected.
    let d = wait_failed(&p, &ids[4].0);
    let err = s(&d["error"]);
    assert!(
        err.contains("NPM_TOKEN") && err.contains("secret"),
        "the history check names the variable: {err}"
    );
    let everything = format!("{d}{}{:?}", p.build_log(&ids[4].0), p.events(&ids[4].0));
    assert!(!everything.contains(&token), "the value never shows");
    assert!(
        p.build_log(&ids[4].0)
            .contains("installing private packages with [REDACTED]"),
        "the printed value is scrubbed"
    );
}

/// Follows `/logs?after=N&wait=S` like the CLI does, until the deployment ends;
/// records when a line containing `live-` was first seen, and the status then.
struct Follower {
    text: Arc<Mutex<String>>,
    first_live: Arc<Mutex<Option<(f64, String)>>>,
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl Follower {
    fn start(p: &Platform, id: &str) -> Follower {
        let text = Arc::new(Mutex::new(String::new()));
        let first_live = Arc::new(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        let (api, token, id) = (p.api(), p.token.clone(), id.to_string());
        let (t2, f2, s2) = (text.clone(), first_live.clone(), stop.clone());
        let handle = std::thread::spawn(move || {
            let mut after = 0i64;
            let started = Instant::now();
            while !s2.load(Ordering::SeqCst) && started.elapsed() < BUILD_WAIT {
                let out = std::process::Command::new("curl")
                    .args(["-sS", "--max-time", "30", "-H"])
                    .arg(format!("Authorization: Bearer {token}"))
                    .arg(format!(
                        "{api}/api/v1/deployments/{id}/logs?after={after}&wait=5"
                    ))
                    .output();
                let Ok(out) = out else { continue };
                let seen = now_secs();
                let Ok(v) = serde_json::from_slice::<Value>(&out.stdout) else {
                    continue;
                };
                let chunk = s(&v["text"]);
                // The step's output line, not the `Step N/M : RUN echo live-…` line.
                if chunk.lines().any(|l| {
                    l.trim()
                        .strip_prefix("live-")
                        .is_some_and(|t| t.starts_with(|c: char| c.is_ascii_digit()))
                }) {
                    let mut f = f2.lock().expect("lock");
                    if f.is_none() {
                        *f = Some((seen, s(&v["status"])));
                    }
                }
                t2.lock().expect("lock").push_str(&chunk);
                after = v["after"].as_i64().unwrap_or(after);
                if !["queued", "building", "pushing", "deploying"]
                    .contains(&s(&v["status"]).as_str())
                {
                    break;
                }
            }
        });
        Follower {
            text,
            first_live,
            stop,
            handle: Some(handle),
        }
    }

    fn finish(mut self) -> (String, Option<(f64, String)>) {
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        let text = self.text.lock().expect("lock").clone();
        let live = self.first_live.lock().expect("lock").clone();
        (text, live)
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn random_alnum(n: usize, upper_only: bool) -> String {
    let chars: &[u8] = if upper_only {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    } else {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    };
    (0..n)
        .map(|_| chars[rand::random::<u32>() as usize % chars.len()] as char)
        .collect()
}

#[test]
fn registry_credentials_live_logs_and_secrets_scrubbed_everywhere() {
    if !services_available() {
        return;
    }
    let Some(reg) = AuthRegistry::start() else {
        return;
    };
    let p = Platform::start_with(
        "sec",
        vec![
            ("HANZO_REGISTRY".into(), reg.addr.clone()),
            ("HANZO_REGISTRY_USERNAME".into(), reg.user.clone()),
            ("HANZO_REGISTRY_PASSWORD".into(), reg.password.clone()),
        ],
    );
    let aws = format!("AKIA{}", random_alnum(16, true));
    let github = format!("ghp_{}", random_alnum(36, false));
    let password = reg.password.clone();
    let sentinels = [aws.as_str(), github.as_str(), password.as_str()];

    // A build that prints secrets (the registry password in two chunks a second apart),
    // then a line with its own timestamp, then sleeps: the line must reach the API
    // before the build ends.
    let repo = docker_app(&p, "leaky", "", "");
    std::fs::write(
        repo.path().join("sentinels.txt"),
        format!("aws key id {aws}\ngithub token {github}\n"),
    )
    .expect("write");
    std::fs::write(repo.path().join("pw.txt"), &password).expect("write");
    repo.edit("Dockerfile", |t| {
        t.replace(
            "COPY app.py .",
            "COPY app.py sentinels.txt pw.txt ./\n\
             RUN cat sentinels.txt && head -c 12 pw.txt && sleep 1 && tail -c +13 pw.txt && echo\n\
             RUN echo live-$(date +%s.%N) && sleep 6 && echo after-live",
        )
    });
    repo.commit("print secrets");
    let ok = p.deploy_queued("leaky");
    let follower = Follower::start(&p, &ok);
    let d = wait_running(&p, &ok);
    let (streamed, live) = follower.finish();

    // Pushed with the credentials; the digest recorded is the registry's.
    let (path, tag) = repo_and_tag(&s(&d["imageTag"]));
    assert_eq!(
        reg.digest(&path, &tag).as_deref(),
        Some(s(&d["imageDigest"]).as_str()),
        "the registry serves the recorded digest"
    );
    wait_answers(&p, "leaky", "hello from docker-hello");

    // Live: the line was in the API while the build still ran, within a second or so.
    let (seen_at, status_then) = live.expect("the live line was streamed");
    let printed: f64 = streamed
        .lines()
        .find_map(|l| l.trim().strip_prefix("live-"))
        .filter(|t| t.starts_with(|c: char| c.is_ascii_digit()))
        .and_then(|t| t.trim().parse().ok())
        .expect("the live line carries its timestamp");
    let latency = seen_at - printed;
    eprintln!(
        "a build line reached the API {:.0} ms after it was printed",
        latency * 1000.0
    );
    assert_eq!(status_then, "building", "seen before the build ended");
    assert!(
        latency < 1.0,
        "the line took {latency:.2}s to reach the API (spec: within a second)"
    );
    assert!(
        streamed.lines().any(|l| l.trim() == "after-live"),
        "consecutive lines stay apart:\n{streamed}"
    );
    assert_one_step_per_line(&streamed);

    // A failing build that prints them: the error (the log's tail) is scrubbed too.
    repo.edit("Dockerfile", |t| {
        t.replace(
            "&& echo after-live",
            "&& echo after-live\nRUN cat sentinels.txt pw.txt; echo; exit 3",
        )
    });
    repo.commit("print secrets and fail");
    let failed = p.deploy_queued("leaky");
    let d = wait_failed(&p, &failed);
    assert!(s(&d["error"]).contains("[REDACTED]"), "{}", d["error"]);

    // The registry password in an ENV: rejected by the history check, never pushed.
    repo.edit("Dockerfile", |t| {
        t.replace(
            "RUN cat sentinels.txt pw.txt; echo; exit 3",
            &format!("ENV REGISTRY_PASS={password}"),
        )
    });
    repo.commit("keep a secret in the image");
    let kept = p.deploy_queued("leaky");
    let d = wait_failed(&p, &kept);
    let err = s(&d["error"]);
    assert!(
        err.contains("REGISTRY_PASS") && err.contains("ENV"),
        "the history check names the variable: {err}"
    );
    let commit = s(&d["gitCommit"]);
    assert_eq!(
        reg.digest(&path, &commit[..7]),
        None,
        "the rejected image was not pushed"
    );

    // Nowhere: stored logs, streamed logs, errors, events, the audit log, the server's log.
    let mut everything = streamed.clone();
    for id in [&ok, &failed, &kept] {
        everything.push_str(&p.build_log(id));
        everything.push_str(&p.deployment(id).to_string());
        everything.push_str(&format!("{:?}", p.events(id)));
    }
    everything.push_str(&p.api_get("/api/v1/audit").to_string());
    everything.push_str(&p.server_log());
    for secret in sentinels {
        assert!(
            !everything.contains(secret),
            "a secret leaked: {}…",
            &secret[..6]
        );
    }
    assert!(p.build_log(&ok).contains("aws key id [REDACTED]"));
    assert!(p.build_log(&ok).contains("github token [REDACTED]"));

    // Without credentials the push fails with a clear message.
    let anon = Platform::start_with(
        "anon",
        vec![
            ("HANZO_REGISTRY".into(), reg.addr.clone()),
            ("HANZO_REGISTRY_USERNAME".into(), String::new()),
            ("HANZO_REGISTRY_PASSWORD".into(), String::new()),
        ],
    );
    let _repo12 = docker_app(&anon, "nocreds", "", "");
    let id = anon.deploy_queued("nocreds");
    let d = wait_failed(&anon, &id);
    let err = s(&d["error"]);
    assert!(
        err.contains("pushing") && err.contains("credentials"),
        "the push error names the cause and the fix: {err}"
    );
    eprintln!("push without credentials: {err}");
}

#[test]
fn an_engine_that_lost_the_cache_gets_it_back_from_the_registry() {
    if !services_available() {
        return;
    }
    let p = Platform::start("cache");
    let repo = Repo::from_example("node-hello", &p.org);
    // Content of its own, so no other build shares these layers.
    let nonce = unique("n");
    repo.edit("package.json", |t| {
        t.replace(
            "\"private\": true,",
            &format!("\"private\": true,\n  \"keywords\": [\"{nonce}\"],"),
        )
    });
    repo.commit("own content");
    p.create_app("hello", &repo);
    let first = p.deploy_queued("hello");
    let d = wait_running(&p, &first);
    let image = s(&d["imageTag"]);
    let (repository, _) = image.rsplit_once(':').expect("image:tag");

    // The engine forgets the application's images (a new machine, a pruned engine);
    // its instances go first, since an image in use cannot be removed.
    let out = p.cli(&["scale", "hello", "0", "--org", &p.org]);
    assert!(out.status.success(), "scale to 0: {}", stderr(&out));
    wait_for(
        "the instances to be removed",
        Duration::from_secs(120),
        || {
            let out = std::process::Command::new("docker")
                .args([
                    "ps",
                    "-aq",
                    "--filter",
                    &format!("label=ai.hanzo.org={}", p.org),
                ])
                .output()
                .ok()?;
            out.stdout.trim_ascii().is_empty().then_some(())
        },
    );
    let out = std::process::Command::new("docker")
        .args(["images", "--format", "{{.Repository}}:{{.Tag}}", repository])
        .output()
        .expect("docker images");
    let tags: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect();
    assert!(!tags.is_empty());
    let rmi = std::process::Command::new("docker")
        .arg("rmi")
        .args(&tags)
        .output()
        .expect("docker rmi");
    assert!(
        rmi.status.success(),
        "{}",
        String::from_utf8_lossy(&rmi.stderr)
    );
    let deleted = String::from_utf8_lossy(&rmi.stdout)
        .matches("Deleted:")
        .count();
    assert!(
        deleted >= 3,
        "the image and its build steps are gone from the engine ({deleted} deleted)"
    );

    let again = p.deploy_queued("hello");
    wait_running(&p, &again);
    let log = p.build_log(&again);
    assert!(
        log.contains(&format!(
            "==> build cache restored from {repository}:latest"
        )),
        "the previous image is pulled back as the cache:\n{log}"
    );
    assert!(
        log.contains("Using cache") && !log.contains("Running in"),
        "every step comes from the restored cache:\n{log}"
    );
}
