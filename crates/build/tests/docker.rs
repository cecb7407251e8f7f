//! End-to-end tests against a real Docker Engine (`HANZO_TEST_DOCKER=1`) and registry
//! (`HANZO_TEST_REGISTRY`, e.g. 127.0.0.1:5000). Base images come from
//! `scripts/lib/base-images.sh ensure` (debian:bookworm-slim, node:18-bookworm-slim).

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bollard::Docker;
use hanzo_build::*;
use rand::Rng;
use secrecy::SecretString;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

fn service(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() && v != "0" => Some(v),
        _ => {
            if std::env::var("HANZO_REQUIRE_SERVICES").as_deref() == Ok("1") {
                panic!("{var} must be set (HANZO_REQUIRE_SERVICES=1)");
            }
            println!("skipped: {var} not set");
            None
        }
    }
}

fn docker() -> Option<Docker> {
    service("HANZO_TEST_DOCKER")?;
    Some(Docker::connect_with_defaults().expect("docker client"))
}

fn suffix() -> String {
    let n: u32 = rand::rng().random();
    format!("{n:08x}")
}

/// Removes, when dropped (even when the test fails), the images a test names and the
/// intermediate images its builds created (ids from ` ---> <id>` log lines that did not exist
/// before the test and have no tag).
struct Cleanup {
    before: HashSet<String>,
    names: Mutex<Vec<String>>,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Cleanup {
    fn new() -> Self {
        Cleanup {
            before: image_ids(),
            names: Mutex::new(Vec::new()),
            lines: Arc::new(Mutex::new(Vec::new())),
        }
    }

    fn images(&self, names: impl IntoIterator<Item = String>) {
        self.names.lock().unwrap().extend(names);
    }

    /// Collects log lines in the background (and remembers them for the cleanup).
    fn collector(&self) -> (mpsc::Sender<String>, tokio::task::JoinHandle<Vec<String>>) {
        let (tx, mut rx) = mpsc::channel::<String>(64);
        let shared = self.lines.clone();
        let handle = tokio::spawn(async move {
            let mut lines = Vec::new();
            while let Some(l) = rx.recv().await {
                shared.lock().unwrap().push(l.clone());
                lines.push(l);
            }
            lines
        });
        (tx, handle)
    }
}

fn image_ids() -> HashSet<String> {
    std::process::Command::new("docker")
        .args(["images", "-aq"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn docker_quiet(args: &[&str]) -> Option<String> {
    let out = std::process::Command::new("docker")
        .args(args)
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let names = std::mem::take(&mut *self.names.lock().unwrap());
        for name in &names {
            docker_quiet(&["rmi", "-f", name]);
        }
        let lines = self.lines.lock().map(|l| l.clone()).unwrap_or_default();
        let mut layers: Vec<String> = lines
            .iter()
            .filter_map(|l| l.trim().strip_prefix("---> "))
            .map(|id| id.trim().to_string())
            .filter(|id| id.len() == 12 && id.chars().all(|c| c.is_ascii_hexdigit()))
            .filter(|id| !self.before.contains(id))
            .collect();
        layers.reverse(); // children before parents
        for id in layers {
            if docker_quiet(&["image", "inspect", "-f", "{{len .RepoTags}}", &id]).as_deref()
                == Some("0")
            {
                docker_quiet(&["rmi", &id]);
            }
        }
    }
}

fn require_image(image: &str) {
    let ok = std::process::Command::new("docker")
        .args(["image", "inspect", image])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "the base image {image} is missing; run scripts/lib/base-images.sh ensure"
    );
}

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (path, body) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
}

fn manifest(yaml: &str) -> Manifest {
    hanzo_manifest::parse(yaml, "hanzo.yaml").unwrap_or_else(|e| panic!("manifest: {e}"))
}

fn settings() -> BuildSettings {
    let mut s = BuildSettings::default();
    // Offline machine: the local images (scripts/lib/base-images.sh) stand in for the official ones.
    s.apply_env([
        ("HANZO_BASE_IMAGE_NODE_20", "node:18-bookworm-slim"),
        ("HANZO_BASE_IMAGE_PYTHON_3_12", "python:3.11-slim-bookworm"),
        ("HANZO_BASE_IMAGE_GO_1_22", "golang:1.19-bookworm"),
        ("HANZO_BASE_IMAGE_RUST_1_78", "rust:1.63-bookworm"),
        ("HANZO_BASE_IMAGE_STATIC", "nginx:1.22-bookworm"),
        ("HANZO_BASE_IMAGE_DISTROLESS", "debian:bookworm-slim"),
    ]);
    s.apply_env(std::env::vars());
    s
}

/// A docker-runtime plan for a Dockerfile in a fresh directory.
fn docker_plan(dir: &Path, dockerfile: &str, extra_yaml: &str) -> BuildPlan {
    write(dir, &[("Dockerfile", dockerfile)]);
    let m = manifest(&format!(
        "name: t\norg: test\nruntime: docker\n{extra_yaml}services:\n  - type: worker\n    command: sh\n"
    ));
    plan(&m, dir, &settings()).expect("plan")
}

async fn containers_with(docker: &Docker, marker: &str) -> usize {
    let opts = bollard::query_parameters::ListContainersOptionsBuilder::default()
        .all(true)
        .build();
    docker
        .list_containers(Some(opts))
        .await
        .expect("list containers")
        .into_iter()
        .filter(|c| c.command.as_deref().is_some_and(|cmd| cmd.contains(marker)))
        .count()
}

async fn wait_no_containers(docker: &Docker, marker: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if containers_with(docker, marker).await == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the build's containers were not removed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn node_example_builds_pushes_and_has_a_digest() {
    let Some(docker) = docker() else { return };
    let cleanup = Cleanup::new();
    let Some(registry) = service("HANZO_TEST_REGISTRY") else {
        return;
    };
    require_image("node:18-bookworm-slim");

    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            (
                "package.json",
                r#"{"name":"hello","version":"1.0.0","scripts":{"start":"node server.js","build":"node build.js"}}"#,
            ),
            (
                "package-lock.json",
                r#"{"name":"hello","version":"1.0.0","lockfileVersion":3,"requires":true,"packages":{"":{"name":"hello","version":"1.0.0"}}}"#,
            ),
            (".npmrc", "audit=false\nfund=false\nupdate-notifier=false\n"),
            (
                "build.js",
                "console.log('building with token ' + process.env.BUILD_TOKEN_VALUE);\n",
            ),
            (
                "server.js",
                "require('http').createServer((q,s)=>s.end('hello')).listen(process.env.PORT||3000);\n",
            ),
            (".dockerignore", "secret.txt\n"),
            ("secret.txt", "not in the image"),
        ],
    );
    let m = manifest(
        "name: hello\norg: test\nruntime: node-20\nbuild:\n  command: BUILD_TOKEN_VALUE=tok-1234567890-sentinel npm run build\nservices:\n  - type: web\n    port: 3000\n",
    );
    let mut s = settings();
    if Path::new("/etc/ssl/certs/ca-certificates.crt").exists() {
        s.ca_bundle = Some("/etc/ssl/certs/ca-certificates.crt".into());
    }
    let plan = plan(&m, dir.path(), &s).expect("plan");
    assert!(plan.generated);

    let repo = format!("{registry}/test-hello-{}", suffix());
    let tags = vec![format!("{repo}:abc1234"), format!("{repo}:latest")];
    cleanup.images(tags.clone());
    let builder = Builder::new(docker.clone(), s);
    let secrets = [SecretString::from("tok-1234567890-sentinel")];
    let (tx, lines) = cleanup.collector();
    let id = builder
        .build(&plan, &tags, &secrets, tx, CancellationToken::new())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let lines = lines.await.unwrap();
    assert!(id.starts_with("sha256:"), "{id}");
    assert!(lines.iter().any(|l| l.starts_with("Step 1/")), "{lines:?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("building with token [REDACTED]")),
        "{lines:?}"
    );
    assert!(!lines.iter().any(|l| l.contains("sentinel")), "{lines:?}");

    // Both tags point at the image; .dockerignore kept secret.txt out.
    for tag in &tags {
        let inspect = docker.inspect_image(tag).await.expect("tagged");
        assert_eq!(inspect.id.as_deref(), Some(id.as_str()));
    }

    let (tx, push_lines) = cleanup.collector();
    let digest = builder
        .push(&tags[0], None, tx)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest}"
    );
    assert!(!push_lines.await.unwrap().is_empty());

    builder
        .check_history(
            &id,
            &[("OTHER".into(), SecretString::from("value-not-in-image"))],
        )
        .await
        .expect("history is clean");
}

#[tokio::test]
async fn failed_build_reports_the_step_and_a_scrubbed_tail() {
    let Some(docker) = docker() else { return };
    let cleanup = Cleanup::new();
    require_image("debian:bookworm-slim");
    let dir = tempfile::tempdir().unwrap();
    let plan = docker_plan(
        dir.path(),
        "FROM debian:bookworm-slim\nRUN echo preparing && echo \"password is SENTINEL-a1b2c3d4\" && echo about to fail && exit 3\n",
        "",
    );
    let tag = format!("hanzo-test-fail:{}", suffix());
    cleanup.images(vec![tag.clone()]);
    let secrets = [SecretString::from("SENTINEL-a1b2c3d4")];
    let (tx, lines) = cleanup.collector();
    let err = Builder::new(docker, settings())
        .build(
            &plan,
            std::slice::from_ref(&tag),
            &secrets,
            tx,
            CancellationToken::new(),
        )
        .await
        .unwrap_err();
    let lines = lines.await.unwrap();
    let msg = err.to_string();
    assert!(matches!(err, BuildError::BuildFailed { .. }), "{err:?}");
    assert!(msg.contains("step 2/2"), "{msg}");
    assert!(msg.contains("about to fail"), "{msg}");
    assert!(msg.contains("non-zero code: 3"), "{msg}");
    assert!(msg.contains("fix the Dockerfile"), "{msg}");
    assert!(
        msg.contains("[REDACTED]") && !msg.contains("SENTINEL"),
        "{msg}"
    );
    assert!(!lines.iter().any(|l| l.contains("SENTINEL")), "{lines:?}");
}

#[tokio::test]
async fn cancel_stops_the_build_and_removes_its_container() {
    let Some(docker) = docker() else { return };
    let _cleanup = Cleanup::new();
    require_image("debian:bookworm-slim");
    let marker = format!("hanzo-cancel-{}", suffix());
    let dir = tempfile::tempdir().unwrap();
    let plan = docker_plan(
        dir.path(),
        &format!("FROM debian:bookworm-slim\nRUN echo started && sleep 300 # {marker}\n"),
        "",
    );
    let builder = Builder::new(docker.clone(), settings());
    let cancel = CancellationToken::new();
    let (tx, mut rx) = mpsc::channel::<String>(64);
    let task = {
        let cancel = cancel.clone();
        let plan = plan.clone();
        tokio::spawn(async move { builder.build(&plan, &[], &[], tx, cancel).await })
    };
    // Wait for the step to run, then cancel.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let line = tokio::time::timeout_at(deadline.into(), rx.recv())
            .await
            .expect("the build started")
            .expect("log line");
        if line.contains("started") {
            break;
        }
    }
    let started = Instant::now();
    cancel.cancel();
    let result = tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .expect("cancel is prompt")
        .unwrap();
    assert!(matches!(result, Err(BuildError::Cancelled)), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(20));
    wait_no_containers(&docker, &marker).await;
}

#[tokio::test]
async fn timeout_fails_the_build() {
    let Some(docker) = docker() else { return };
    let cleanup = Cleanup::new();
    require_image("debian:bookworm-slim");
    let marker = format!("hanzo-timeout-{}", suffix());
    let dir = tempfile::tempdir().unwrap();
    let mut plan = docker_plan(
        dir.path(),
        &format!("FROM debian:bookworm-slim\nRUN sleep 300 # {marker}\n"),
        "",
    );
    plan.timeout = Duration::from_secs(3);
    let (tx, _lines) = cleanup.collector();
    let started = Instant::now();
    let err = Builder::new(docker.clone(), settings())
        .build(&plan, &[], &[], tx, CancellationToken::new())
        .await
        .unwrap_err();
    assert!(matches!(err, BuildError::Timeout { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(err.to_string().contains("timeout"), "{err}");
    wait_no_containers(&docker, &marker).await;
}

#[tokio::test]
async fn network_none_blocks_steps_that_need_the_network() {
    let Some(docker) = docker() else { return };
    let cleanup = Cleanup::new();
    require_image("debian:bookworm-slim");
    let builder = Builder::new(docker, settings());
    let needs_net = "FROM debian:bookworm-slim\nRUN bash -c 'exec 3<>/dev/tcp/deb.debian.org/80' && echo reached the mirror\n";
    let offline = "FROM debian:bookworm-slim\nRUN echo no network needed > /ok\n";

    let dir = tempfile::tempdir().unwrap();
    let plan = docker_plan(dir.path(), needs_net, "build:\n  network: none\n");
    assert_eq!(plan.network, BuildNetwork::None);
    let (tx, _l) = cleanup.collector();
    let err = builder
        .build(&plan, &[], &[], tx, CancellationToken::new())
        .await
        .unwrap_err();
    assert!(matches!(err, BuildError::BuildFailed { .. }), "{err:?}");

    let dir = tempfile::tempdir().unwrap();
    let plan = docker_plan(dir.path(), offline, "build:\n  network: none\n");
    let (tx, _l) = cleanup.collector();
    let id = builder
        .build(&plan, &[], &[], tx, CancellationToken::new())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    cleanup.images(vec![id]);

    // The same network step passes with the default network (the test itself is sound).
    let dir = tempfile::tempdir().unwrap();
    let plan = docker_plan(dir.path(), needs_net, "");
    let (tx, _l) = cleanup.collector();
    let id = builder
        .build(&plan, &[], &[], tx, CancellationToken::new())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    cleanup.images(vec![id]);
}

#[tokio::test]
async fn memory_limit_kills_a_greedy_step() {
    let Some(docker) = docker() else { return };
    let cleanup = Cleanup::new();
    require_image("debian:bookworm-slim");
    let dir = tempfile::tempdir().unwrap();
    // The shell keeps the whole command substitution (300 MB) in memory.
    let plan = docker_plan(
        dir.path(),
        "FROM debian:bookworm-slim\nRUN x=$(head -c 300m /dev/zero | tr '\\0' a); echo ${#x}\n",
        "",
    );
    let mut s = settings();
    s.memory_bytes = 64 * 1024 * 1024;
    let (tx, _l) = cleanup.collector();
    let err = Builder::new(docker, s)
        .build(&plan, &[], &[], tx, CancellationToken::new())
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("memory limit of 64 MiB"), "{msg}");
}

#[tokio::test]
async fn history_check_names_the_variable_not_the_value() {
    let Some(docker) = docker() else { return };
    let cleanup = Cleanup::new();
    require_image("debian:bookworm-slim");
    let value = format!("s3cr3t-{}", suffix());
    let builder = Builder::new(docker, settings());

    let dir = tempfile::tempdir().unwrap();
    let plan = docker_plan(
        dir.path(),
        "FROM debian:bookworm-slim\nARG TOKEN\nENV API_KEY=$TOKEN\n",
        &format!("build:\n  args:\n    TOKEN: {value}\n"),
    );
    let (tx, _l) = cleanup.collector();
    let id = builder
        .build(&plan, &[], &[], tx, CancellationToken::new())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    cleanup.images(vec![id.clone()]);
    let err = builder
        .check_history(
            &id,
            &[("DEPLOY_TOKEN".into(), SecretString::from(value.clone()))],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, BuildError::SecretInImage { variable, .. } if variable == "API_KEY"),
        "{err:?}"
    );
    assert!(!err.to_string().contains(&value));

    let dir = tempfile::tempdir().unwrap();
    let plan = docker_plan(
        dir.path(),
        "FROM debian:bookworm-slim\nARG TOKEN\nRUN echo using the token\n",
        &format!("build:\n  args:\n    TOKEN: {value}\n"),
    );
    let (tx, _l) = cleanup.collector();
    let id = builder
        .build(&plan, &[], &[], tx, CancellationToken::new())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    cleanup.images(vec![id.clone()]);
    let err = builder
        .check_history(
            &id,
            &[("DEPLOY_TOKEN".into(), SecretString::from(value.clone()))],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, BuildError::SecretInImage { variable, kind } if variable == "TOKEN" && kind == "ARG"),
        "{err:?}"
    );
    assert!(!err.to_string().contains(&value));
}

/// Builds a generated plan for `files` + `yaml`; returns the image id and the image's config.
async fn build_generated(
    docker: &Docker,
    cleanup: &Cleanup,
    files: &[(&str, &str)],
    yaml: &str,
) -> (String, bollard::models::ImageInspect) {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), files);
    let s = settings();
    let plan = plan(&manifest(yaml), dir.path(), &s).expect("plan");
    assert!(plan.generated);
    for image in &plan.base_images {
        require_image(image);
    }
    let (tx, lines) = cleanup.collector();
    let result = Builder::new(docker.clone(), s)
        .build(&plan, &[], &[], tx, CancellationToken::new())
        .await;
    let lines = lines.await.unwrap();
    let id = result.unwrap_or_else(|e| panic!("{e}\n{}", lines.join("\n")));
    cleanup.images(vec![id.clone()]);
    let inspect = docker.inspect_image(&id).await.expect("inspect");
    (id, inspect)
}

fn cmd_of(inspect: &bollard::models::ImageInspect) -> Vec<String> {
    inspect
        .config
        .as_ref()
        .and_then(|c| c.cmd.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn node_static_site_is_served_by_the_static_image() {
    let Some(docker) = docker() else { return };
    let cleanup = Cleanup::new();
    let (_id, inspect) = build_generated(
        &docker,
        &cleanup,
        &[
            ("package.json", r#"{"name":"site","version":"1.0.0","scripts":{"build":"node build.js"}}"#),
            (".npmrc", "audit=false\nfund=false\n"),
            (
                "build.js",
                "require('fs').mkdirSync('dist',{recursive:true});require('fs').writeFileSync('dist/index.html','<h1>hi</h1>');\n",
            ),
        ],
        "name: site\norg: test\nruntime: node-20\nbuild:\n  command: npm run build\n  output: dist\nservices:\n  - type: web\n    port: 80\n",
    )
    .await;
    assert_eq!(cmd_of(&inspect), ["nginx", "-g", "daemon off;"]);
}

#[tokio::test]
async fn python_pip_example_builds() {
    let Some(docker) = docker() else { return };
    let cleanup = Cleanup::new();
    let (_id, inspect) = build_generated(
        &docker,
        &cleanup,
        &[
            ("requirements.txt", "# no dependencies\n"),
            ("main.py", "app = None\n"),
        ],
        "name: py\norg: test\nruntime: python-3.12\nservices:\n  - type: web\n    port: 8000\n",
    )
    .await;
    assert_eq!(
        cmd_of(&inspect),
        ["uvicorn", "main:app", "--host", "0.0.0.0", "--port", "8000"]
    );
}

#[tokio::test]
async fn go_example_builds_into_the_runtime_image() {
    let Some(docker) = docker() else { return };
    let cleanup = Cleanup::new();
    let (_id, inspect) = build_generated(
        &docker,
        &cleanup,
        &[
            ("go.mod", "module example.com/hello\n\ngo 1.19\n"),
            (
                "main.go",
                "package main\n\nimport (\n\t\"fmt\"\n\t\"net/http\"\n)\n\nfunc main() {\n\thttp.HandleFunc(\"/\", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, \"hello\") })\n\thttp.ListenAndServe(\":8080\", nil)\n}\n",
            ),
        ],
        "name: goapp\norg: test\nruntime: go-1.22\nservices:\n  - type: web\n    port: 8080\n",
    )
    .await;
    assert_eq!(cmd_of(&inspect), ["/app"]);
}

#[tokio::test]
async fn rust_example_builds_into_the_runtime_image() {
    let Some(docker) = docker() else { return };
    let cleanup = Cleanup::new();
    let (_id, inspect) = build_generated(
        &docker,
        &cleanup,
        &[
            (
                "Cargo.toml",
                "[package]\nname = \"hello\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
            ),
            ("src/main.rs", "fn main() { println!(\"hello\"); }\n"),
        ],
        "name: rs\norg: test\nruntime: rust-1.78\nservices:\n  - type: worker\n    command: /app\n",
    )
    .await;
    assert_eq!(cmd_of(&inspect), ["/app"]);
}

#[tokio::test]
async fn python_uv_example_installs_uv_through_the_ca_bundle() {
    let Some(docker) = docker() else { return };
    let cleanup = Cleanup::new();
    let ca = Path::new("/etc/ssl/certs/ca-certificates.crt");
    if !ca.exists() {
        println!("skipped: no system CA bundle at {}", ca.display());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            (
                "pyproject.toml",
                "[project]\nname = \"api\"\nversion = \"0.1.0\"\nrequires-python = \">=3.11\"\ndependencies = []\n",
            ),
            ("main.py", "app = None\n"),
        ],
    );
    let mut s = settings();
    s.ca_bundle = Some(ca.to_path_buf());
    let m = manifest(
        "name: api\norg: test\nruntime: python-3.12\nservices:\n  - type: web\n    port: 8000\n",
    );
    let plan = plan(&m, dir.path(), &s).expect("plan");
    assert!(
        plan.dockerfile.contains("PIP_CERT=/etc/hanzo/build-ca.crt"),
        "{}",
        plan.dockerfile
    );
    require_image(&plan.base_images[0]);
    let (tx, lines) = cleanup.collector();
    let result = Builder::new(docker.clone(), s)
        .build(&plan, &[], &[], tx, CancellationToken::new())
        .await;
    let lines = lines.await.unwrap();
    let id = result.unwrap_or_else(|e| panic!("{e}\n{}", lines.join("\n")));
    cleanup.images(vec![id.clone()]);
    let inspect = docker.inspect_image(&id).await.expect("inspect");
    let env = inspect.config.and_then(|c| c.env).unwrap_or_default();
    assert!(
        env.iter().any(|e| e.starts_with("PATH=/app/.venv/bin:")),
        "{env:?}"
    );
    assert!(
        !env.iter().any(|e| e.contains("build-ca.crt")),
        "the CA is for install steps only: {env:?}"
    );
}

#[tokio::test]
async fn an_unread_log_channel_does_not_hold_a_timed_out_build() {
    let Some(docker) = docker() else { return };
    let _cleanup = Cleanup::new();
    require_image("debian:bookworm-slim");
    let marker = format!("hanzo-noreader-{}", suffix());
    let dir = tempfile::tempdir().unwrap();
    let mut plan = docker_plan(
        dir.path(),
        &format!(
            "FROM debian:bookworm-slim\nRUN while true; do echo line; sleep 0.01; done # {marker}\n"
        ),
        "",
    );
    plan.timeout = Duration::from_secs(3);
    let (tx, _rx) = mpsc::channel::<String>(1); // never read
    let started = Instant::now();
    let err = tokio::time::timeout(
        Duration::from_secs(30),
        Builder::new(docker.clone(), settings()).build(
            &plan,
            &[],
            &[],
            tx,
            CancellationToken::new(),
        ),
    )
    .await
    .expect("the build returns although nobody reads its logs")
    .unwrap_err();
    assert!(matches!(err, BuildError::Timeout { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(30));
    wait_no_containers(&docker, &marker).await;
}
