//! A real platform for end-to-end tests: the `hanzo` binary as server (with its
//! own Traefik, SQLite and data directory), the real Docker Engine and the
//! registry named by `HANZO_TEST_REGISTRY`. Everything a test creates carries a
//! unique organisation name and is removed on drop, even when the test fails.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const HANZO: &str = env!("CARGO_BIN_EXE_hanzo");

/// Returns false (and says so) when the services are not configured and not
/// required; panics when `HANZO_REQUIRE_SERVICES=1`.
pub fn services_available() -> bool {
    let have = std::env::var("HANZO_TEST_DOCKER").is_ok_and(|v| v == "1")
        && std::env::var("HANZO_TEST_REGISTRY").is_ok();
    if !have {
        if std::env::var("HANZO_REQUIRE_SERVICES").is_ok_and(|v| v == "1") {
            panic!("HANZO_TEST_DOCKER=1 and HANZO_TEST_REGISTRY are required (run scripts/test)");
        }
        eprintln!("skipped: HANZO_TEST_DOCKER/HANZO_TEST_REGISTRY not set");
    }
    have
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Polls `f` until it returns Some, or panics with `what` after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}{:06x}", rand::random::<u32>() & 0xff_ffff)
}

pub struct Platform {
    pub data: tempfile::TempDir,
    pub org: String,
    pub api_port: u16,
    pub http_port: u16,
    pub proxy_api_port: u16,
    pub token: String,
    pub extra_env: Vec<(String, String)>,
    child: Option<Child>,
}

impl Platform {
    pub fn start(org_prefix: &str) -> Platform {
        Self::start_with(org_prefix, Vec::new())
    }

    pub fn start_with(org_prefix: &str, extra_env: Vec<(String, String)>) -> Platform {
        let mut p = Platform {
            data: tempfile::tempdir().expect("tempdir"),
            org: unique(org_prefix),
            api_port: free_port(),
            http_port: free_port(),
            proxy_api_port: free_port(),
            token: String::new(),
            extra_env,
            child: None,
        };
        p.spawn_server();
        p.token = std::fs::read_to_string(p.data.path().join("admin.token"))
            .expect("the server writes admin.token on first start")
            .trim()
            .to_string();
        p
    }

    pub fn api(&self) -> String {
        format!("http://127.0.0.1:{}", self.api_port)
    }

    pub fn host(&self, app: &str) -> String {
        format!("{app}.{}.localhost", self.org)
    }

    fn spawn_server(&mut self) {
        let log = std::fs::File::create(self.data.path().join("server.log")).expect("log file");
        let mut cmd = Command::new(HANZO);
        cmd.arg("server")
            .env("HANZO_DATA_DIR", self.data.path())
            .env("HANZO_LISTEN", format!("127.0.0.1:{}", self.api_port))
            .env("HANZO_PROXY_HTTP_PORT", self.http_port.to_string())
            .env("HANZO_PROXY_API_PORT", self.proxy_api_port.to_string())
            .env(
                "HANZO_REGISTRY",
                std::env::var("HANZO_TEST_REGISTRY").unwrap_or_default(),
            )
            .env("HANZO_DRAIN_SECS", "0.5")
            .env("HANZO_STOP_GRACE_SECS", "5")
            .env("HANZO_RESYNC_SECS", "2")
            .env(
                "HANZO_LOG",
                std::env::var("HANZO_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .env("HANZO_SCOPE", &self.org)
            .env_remove("DATABASE_URL")
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log));
        if let Ok(bin) = std::env::var("HANZO_TEST_TRAEFIK_BIN") {
            cmd.env("HANZO_TRAEFIK_BIN", bin);
        }
        for (k, v) in base_image_env().into_iter().chain(ca_bundle_env()) {
            cmd.env(k, v);
        }
        for (k, v) in &self.extra_env {
            cmd.env(k, v);
        }
        self.child = Some(cmd.spawn().expect("start hanzo server"));
        let url = format!("{}/api/v1/health", self.api());
        wait_for("the server to answer", Duration::from_secs(60), || {
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                panic!("hanzo server exited ({status}):\n{}", self.server_log());
            }
            http_get(&url, None).ok().filter(|(code, _)| *code == 200)
        });
    }

    pub fn server_log(&self) -> String {
        std::fs::read_to_string(self.data.path().join("server.log")).unwrap_or_default()
    }

    /// Stops the server the way an operator would (SIGTERM) and starts it again.
    pub fn restart(&mut self) {
        self.stop_server();
        self.spawn_server();
    }

    /// Kills the server with SIGKILL (a crash: no shutdown code runs).
    pub fn kill_server(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server again after [`kill_server`](Self::kill_server) or
    /// [`stop_server`](Self::stop_server), with the same data directory and ports.
    pub fn start_server(&mut self) {
        if self.child.is_none() {
            self.spawn_server();
        }
    }

    pub fn stop_server(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Runs the CLI against this server.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_in(Path::new("."), args)
    }

    pub fn cli_in(&self, dir: &Path, args: &[&str]) -> Output {
        Command::new(HANZO)
            .args(args)
            .current_dir(dir)
            .env("HANZO_SERVER", self.api())
            .env("HANZO_TOKEN", &self.token)
            .env("HANZO_CONFIG", self.data.path().join("cli.json"))
            .stdin(Stdio::null())
            .output()
            .expect("run hanzo")
    }

    /// Calls the API with the admin token: returns the HTTP status and the JSON body
    /// (`Null` when the body is not JSON).
    pub fn api_call(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "--max-time", "60", "-X", method])
            .arg("-H")
            .arg(format!("Authorization: Bearer {}", self.token))
            .args(["-w", "\n%{http_code}"]);
        if let Some(b) = body {
            cmd.args(["-H", "Content-Type: application/json", "--data-binary"])
                .arg(b.to_string());
        }
        let out = cmd
            .arg(format!("{}{path}", self.api()))
            .output()
            .expect("run curl");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let (json, code) = text.rsplit_once('\n').unwrap_or(("", text.as_str()));
        let code = code.trim().parse().unwrap_or(0);
        (
            code,
            serde_json::from_str(json).unwrap_or(serde_json::Value::Null),
        )
    }

    /// GET that must answer 200; returns the JSON body.
    pub fn api_get(&self, path: &str) -> serde_json::Value {
        let (code, v) = self.api_call("GET", path, None);
        assert_eq!(code, 200, "GET {path} answered {code}: {v}");
        v
    }

    /// `hanzo apps create` for the repository, asserting success.
    pub fn create_app(&self, name: &str, repo: &Repo) {
        let repo_path = repo.path().display().to_string();
        let out = self.cli(&[
            "apps", "create", "--name", name, "--org", &self.org, "--repo", &repo_path, "--branch",
            "main",
        ]);
        assert!(out.status.success(), "apps create {name}: {}", stderr(&out));
    }

    /// `hanzo deploy APP --no-follow`: returns the new deployment's id.
    pub fn deploy_queued(&self, app: &str) -> String {
        let out = self.cli(&["deploy", app, "--org", &self.org, "--no-follow", "--json"]);
        assert!(
            out.status.success(),
            "deploy {app} --no-follow: {}\n{}",
            stdout(&out),
            stderr(&out)
        );
        let d: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("deploy --json prints the deployment");
        d["id"].as_str().expect("deployment id").to_string()
    }

    pub fn deployment(&self, id: &str) -> serde_json::Value {
        self.api_get(&format!("/api/v1/deployments/{id}"))
    }

    /// Polls until the deployment's status is one of `statuses`; returns the deployment.
    pub fn wait_status(&self, id: &str, statuses: &[&str], timeout: Duration) -> serde_json::Value {
        let mut last = String::new();
        let deadline = Instant::now() + timeout;
        loop {
            let d = self.deployment(id);
            let status = d["status"].as_str().unwrap_or("").to_string();
            if statuses.contains(&status.as_str()) {
                return d;
            }
            if Instant::now() > deadline {
                panic!(
                    "deployment {id} is {status} (last {last}) after {timeout:?}, not one of {statuses:?}: {d}\nlog:\n{}",
                    self.build_log(id)
                );
            }
            last = status;
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The whole stored build log of a deployment.
    pub fn build_log(&self, id: &str) -> String {
        let (_, v) = self.api_call(
            "GET",
            &format!("/api/v1/deployments/{id}/logs?after=0"),
            None,
        );
        v["text"].as_str().unwrap_or("").to_string()
    }

    /// The deployment's events as (type, message, timestamp).
    pub fn events(&self, id: &str) -> Vec<(String, String, chrono::DateTime<chrono::FixedOffset>)> {
        let v = self.api_get(&format!("/api/v1/deployments/{id}/events"));
        v.as_array()
            .expect("events are an array")
            .iter()
            .map(|e| {
                (
                    e["type"].as_str().unwrap_or("").to_string(),
                    e["message"].as_str().unwrap_or("").to_string(),
                    chrono::DateTime::parse_from_rfc3339(e["timestamp"].as_str().unwrap_or(""))
                        .expect("event timestamp is RFC 3339"),
                )
            })
            .collect()
    }

    /// GET through Traefik with the application's Host header.
    pub fn get_app(&self, app: &str, path: &str) -> Result<(u16, String), String> {
        http_get(
            &format!("http://127.0.0.1:{}{path}", self.http_port),
            Some(&self.host(app)),
        )
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        self.stop_server();
        // The server leaves Traefik running across restarts; the test stops it.
        if let Ok(pid) = std::fs::read_to_string(self.data.path().join("traefik/traefik.pid")) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
        cleanup_org(&self.org);
        if std::thread::panicking() {
            eprintln!("---- server log ----\n{}", self.server_log());
        }
    }
}

/// Removes the containers, network and images of a test organisation.
pub fn cleanup_org(org: &str) {
    let ids = Command::new("docker")
        .args([
            "ps",
            "-aq",
            "--filter",
            &format!("label=ai.hanzo.org={org}"),
        ])
        .output();
    if let Ok(out) = ids {
        let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(String::from)
            .collect();
        if !ids.is_empty() {
            let _ = Command::new("docker")
                .arg("rm")
                .arg("-f")
                .args(&ids)
                .output();
        }
    }
    let _ = Command::new("docker")
        .args(["network", "rm", &format!("hanzo-org-{org}")])
        .output();
    if let Ok(out) = Command::new("docker")
        .args(["images", "--format", "{{.Repository}}:{{.Tag}}"])
        .output()
    {
        let images: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains(&format!("{org}-")))
            .map(String::from)
            .collect();
        if !images.is_empty() {
            let _ = Command::new("docker")
                .arg("rmi")
                .arg("-f")
                .args(&images)
                .output();
        }
    }
}

/// Base images built locally by scripts/lib/base-images.sh (no registry can be pulled here).
///
/// The local images carry their real versions (Node 18, Python 3.11, Go 1.19, Rust 1.63), while
/// applications ask for the spec's defaults (node-20, python-3.12, go-1.22, rust-1.78): each
/// default key follows its family's local image unless the environment sets it. Variables in
/// the environment (scripts/test exports `scripts/lib/base-images.sh env`) win.
pub fn base_image_env() -> Vec<(String, String)> {
    use std::collections::BTreeMap;
    let local = [
        ("NODE_18", "node:18-bookworm-slim"),
        ("PYTHON_3_11", "python:3.11-slim-bookworm"),
        ("GO_1_19", "golang:1.19-bookworm"),
        ("RUST_1_63", "rust:1.63-bookworm"),
        ("STATIC", "nginx:1.22-bookworm"),
        ("DISTROLESS", "debian:bookworm-slim"),
    ];
    // Spec default key → the local key it follows.
    let aliases = [
        ("NODE_20", "NODE_18"),
        ("NODE_22", "NODE_18"),
        ("PYTHON_3_12", "PYTHON_3_11"),
        ("GO_1_22", "GO_1_19"),
        ("RUST_1_78", "RUST_1_63"),
    ];
    let from_env: BTreeMap<String, String> = std::env::vars()
        .filter_map(|(k, v)| {
            let key = k.strip_prefix("HANZO_BASE_IMAGE_")?.to_string();
            (!key.is_empty() && !v.trim().is_empty()).then(|| (key, v.trim().to_string()))
        })
        .collect();
    let mut map: BTreeMap<String, String> = local
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    map.extend(from_env.clone());
    for (alias, source) in aliases {
        if !from_env.contains_key(alias) {
            let image = map.get(source).cloned().unwrap_or_default();
            map.insert(alias.to_string(), image);
        }
    }
    map.into_iter()
        .map(|(k, v)| (format!("HANZO_BASE_IMAGE_{k}"), v))
        .collect()
}

/// The extra CA bundle for builds, when the environment names one (package registries
/// behind this machine's own certificate authority need it).
pub fn ca_bundle_env() -> Vec<(String, String)> {
    match std::env::var("HANZO_BUILD_CA_BUNDLE") {
        Ok(v) if !v.trim().is_empty() => vec![("HANZO_BUILD_CA_BUNDLE".into(), v)],
        _ => Vec::new(),
    }
}

/// A minimal HTTP/1.1 GET with a deadline; returns status and body.
pub fn http_get(url: &str, host: Option<&str>) -> Result<(u16, String), String> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").ok_or("only http URLs")?;
    let (authority, path) = rest
        .split_once('/')
        .map(|(a, p)| (a, format!("/{p}")))
        .unwrap_or((rest, "/".into()));
    let mut stream = std::net::TcpStream::connect(authority).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let host = host.unwrap_or(authority);
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no HTTP header")?;
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or("no status code")?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok((code, body))
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

/// A git repository in a temp dir made from an example, with `org` set in its hanzo.yaml.
pub struct Repo {
    pub dir: tempfile::TempDir,
}

impl Repo {
    pub fn from_example(example: &str, org: &str) -> Repo {
        let dir = tempfile::tempdir().expect("tempdir");
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples")
            .join(example);
        copy_dir(&src, dir.path());
        let r = Repo { dir };
        r.edit("hanzo.yaml", |t| {
            t.replace("org: demo", &format!("org: {org}"))
        });
        r.git(&["init", "-q", "-b", "main"]);
        r.commit("first version");
        r
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    pub fn edit(&self, file: &str, f: impl FnOnce(&str) -> String) {
        let p = self.dir.path().join(file);
        let text = std::fs::read_to_string(&p).unwrap_or_default();
        std::fs::write(&p, f(&text)).expect("write");
    }

    pub fn commit(&self, message: &str) {
        self.git(&["add", "-A"]);
        self.git(&[
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@example.com",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            message,
        ]);
    }

    pub fn git(&self, args: &[&str]) {
        let out = Command::new("git")
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .expect("git");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn copy_dir(src: &Path, dst: &Path) {
    for entry in std::fs::read_dir(src).expect("example dir") {
        let entry = entry.expect("entry");
        let to = dst.join(entry.file_name());
        if entry.path().is_dir() {
            std::fs::create_dir_all(&to).expect("mkdir");
            copy_dir(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), &to).expect("copy");
        }
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// Containers (running or not) whose command contains `marker`: a build step's container.
pub fn containers_with(marker: &str) -> usize {
    let out = Command::new("docker")
        .args(["ps", "-a", "--no-trunc", "--format", "{{.Command}}"])
        .output()
        .expect("docker ps");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(marker))
        .count()
}

/// A bcrypt `user:hash` line for an htpasswd file: `htpasswd` (apache2-utils) when
/// installed, else Python's crypt module (libxcrypt knows bcrypt). None when neither works.
pub fn htpasswd_line(user: &str, password: &str) -> Option<String> {
    if let Ok(out) = Command::new("htpasswd")
        .args(["-nbB", user, password])
        .output()
        && out.status.success()
    {
        let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if line.starts_with(&format!("{user}:$2")) {
            return Some(line);
        }
    }
    let out = Command::new("python3")
        .args([
            "-W",
            "ignore",
            "-c",
            "import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH)))",
            password,
        ])
        .output()
        .ok()?;
    let hash = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && hash.starts_with("$2")).then(|| format!("{user}:{hash}"))
}

/// An OCI registry (`docker-registry`, distribution 2.8) with htpasswd authentication on a
/// free loopback port, stopped and deleted on drop.
pub struct AuthRegistry {
    pub addr: String,
    pub user: String,
    pub password: String,
    _dir: tempfile::TempDir,
    child: Child,
}

impl AuthRegistry {
    /// Starts one; None (after saying why) when `docker-registry` or a bcrypt tool is
    /// missing and services are not required.
    pub fn start() -> Option<AuthRegistry> {
        let missing = |what: &str| -> Option<AuthRegistry> {
            if std::env::var("HANZO_REQUIRE_SERVICES").is_ok_and(|v| v == "1") {
                panic!("{what} (HANZO_REQUIRE_SERVICES=1)");
            }
            eprintln!("skipped: {what}");
            None
        };
        let user = "hanzo".to_string();
        // Long and random: a value no build would print by chance.
        let password = format!(
            "Rg{:016x}{:016x}",
            rand::random::<u64>(),
            rand::random::<u64>()
        );
        let Some(line) = htpasswd_line(&user, &password) else {
            return missing(
                "no bcrypt tool: install apache2-utils (htpasswd) or python3 with the crypt module",
            );
        };
        if Command::new("docker-registry")
            .arg("--version")
            .output()
            .is_err()
        {
            return missing("docker-registry is not installed (apt-get install docker-registry)");
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        std::fs::write(dir.path().join("htpasswd"), format!("{line}\n")).expect("htpasswd");
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {root}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\nauth:\n  htpasswd:\n    realm: hanzo-test\n    path: {htpasswd}\n",
            root = dir.path().join("data").display(),
            htpasswd = dir.path().join("htpasswd").display(),
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).expect("registry config");
        let log = std::fs::File::create(dir.path().join("registry.log")).expect("log");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start docker-registry");
        let r = AuthRegistry {
            addr,
            user,
            password,
            _dir: dir,
            child,
        };
        // It answers 401 to anonymous requests once it runs.
        wait_for("the registry to answer", Duration::from_secs(30), || {
            http_get(&format!("http://{}/v2/", r.addr), None)
                .ok()
                .filter(|(code, _)| *code == 401)
        });
        Some(r)
    }

    /// The manifest digest the registry holds for `repository:tag` (authenticated).
    pub fn digest(&self, repository: &str, tag: &str) -> Option<String> {
        manifest_digest(
            &format!("http://{}/v2/{repository}/manifests/{tag}", self.addr),
            Some((&self.user, &self.password)),
        )
    }
}

impl Drop for AuthRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `Docker-Content-Digest` of a manifest URL (HEAD, Docker v2 schema 2 accepted).
pub fn manifest_digest(url: &str, auth: Option<(&str, &str)>) -> Option<String> {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-sSI",
        "--max-time",
        "30",
        "-H",
        "Accept: application/vnd.docker.distribution.manifest.v2+json",
        "-H",
        "Accept: application/vnd.oci.image.manifest.v1+json",
    ]);
    if let Some((u, p)) = auth {
        cmd.arg("-u").arg(format!("{u}:{p}"));
    }
    let out = cmd.arg(url).output().ok()?;
    String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("docker-content-digest")
            .then(|| v.trim().to_string())
    })
}
