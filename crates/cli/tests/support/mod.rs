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
            .env("HANZO_LOG", "info")
            .env("HANZO_SCOPE", &self.org)
            .env_remove("DATABASE_URL")
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log));
        if let Ok(bin) = std::env::var("HANZO_TEST_TRAEFIK_BIN") {
            cmd.env("HANZO_TRAEFIK_BIN", bin);
        }
        for (k, v) in base_image_env() {
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
pub fn base_image_env() -> Vec<(String, String)> {
    let mut v = Vec::new();
    for (k, val) in std::env::vars() {
        if k.starts_with("HANZO_BASE_IMAGE_") {
            v.push((k, val));
        }
    }
    if v.is_empty() {
        for key in ["NODE_20", "NODE_22", "NODE_18"] {
            v.push((
                format!("HANZO_BASE_IMAGE_{key}"),
                "node:18-bookworm-slim".into(),
            ));
        }
    }
    v
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
