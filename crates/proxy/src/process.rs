//! The Traefik process the platform starts (the embedded default).

use crate::{Proxy, ProxyError, TraefikSettings, render_static_config};
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

/// How long `start` waits for Traefik's ping to answer.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running Traefik. One the platform spawned is killed when this handle is
/// dropped; one it adopted (left running by a previous, killed server process,
/// see [`TraefikProcess::start_or_adopt`]) keeps running unless `stop` is called.
#[derive(Debug)]
pub struct TraefikProcess {
    child: Option<Child>,
    pid: Option<u32>,
    settings: TraefikSettings,
    api_url: String,
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ProxyError {
    let path = path.to_path_buf();
    move |source| ProxyError::Io {
        action,
        path,
        source,
    }
}

/// Fails with [`ProxyError::PortInUse`] when something already listens on the port.
fn check_free(host: Ipv4Addr, port: u16) -> Result<(), ProxyError> {
    match TcpListener::bind(SocketAddr::from((host, port))) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(ProxyError::PortInUse {
            host: host.to_string(),
            port,
        }),
        // Anything else (e.g. no permission for a low port) shows in Traefik's own log.
        Err(_) => Ok(()),
    }
}

/// The last `lines` lines of a file, for error messages.
pub(crate) fn tail(path: &Path, lines: usize) -> String {
    let Ok(mut f) = std::fs::File::open(path) else {
        return format!("(no log at {})", path.display());
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl TraefikProcess {
    /// Writes the static configuration, starts Traefik (its output appended to
    /// `state_dir/traefik.log`) and waits until its ping answers. Fails with the
    /// log's last lines when Traefik exits or does not answer in time.
    pub async fn start(s: &TraefikSettings) -> Result<TraefikProcess, ProxyError> {
        for dir in [&s.state_dir, &s.dynamic_dir] {
            std::fs::create_dir_all(dir).map_err(io_err("create", dir))?;
        }
        // Otherwise the ping below could be answered by someone else's Traefik.
        check_free(Ipv4Addr::LOCALHOST, s.api_port)?;
        check_free(Ipv4Addr::UNSPECIFIED, s.http_port)?;
        if let Some(p) = s.https_port {
            check_free(Ipv4Addr::UNSPECIFIED, p)?;
        }
        let config_path = s.static_config_path();
        let tmp = s.state_dir.join(".traefik.yaml.tmp");
        std::fs::write(&tmp, render_static_config(s)).map_err(io_err("write", &tmp))?;
        std::fs::rename(&tmp, &config_path).map_err(io_err("rename into", &config_path))?;

        let log_path = s.log_path();
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io_err("open", &log_path))?;
        let _ = writeln!(
            log,
            "--- hanzo: starting {} --configFile={}",
            s.bin.display(),
            config_path.display()
        );
        let stderr = log.try_clone().map_err(io_err("open", &log_path))?;
        let child = Command::new(&s.bin)
            .arg(format!("--configFile={}", config_path.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(stderr))
            // Its own process group: a Ctrl-C meant for the server does not
            // take the proxy down with it; the server decides.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| ProxyError::Spawn {
                bin: s.bin.clone(),
                source,
            })?;
        let pid = child.id();
        if let Some(pid) = pid {
            let pid_path = s.pid_path();
            std::fs::write(&pid_path, format!("{pid}\n")).map_err(io_err("write", &pid_path))?;
        }
        let api_url = format!("http://127.0.0.1:{}", s.api_port);
        let mut process = TraefikProcess {
            child: Some(child),
            pid,
            settings: s.clone(),
            api_url,
        };
        process.wait_ready().await?;
        tracing::info!(pid = ?process.pid(), api = %process.api_url, http_port = s.http_port, "Traefik started");
        Ok(process)
    }

    async fn wait_ready(&mut self) -> Result<(), ProxyError> {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| ProxyError::Api {
                url: self.api_url.clone(),
                reason: e.to_string(),
            })?;
        let url = format!("{}/ping", self.api_url);
        let started = tokio::time::Instant::now();
        let log_tail = |p: &Path| tail(p, 20);
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(ProxyError::Exited {
                    status: status.to_string(),
                    log_tail: log_tail(&self.settings.log_path()),
                });
            }
            if let Ok(resp) = client.get(&url).send().await
                && resp.status().is_success()
            {
                return Ok(());
            }
            if started.elapsed() >= START_TIMEOUT {
                if let Some(child) = self.child.as_mut() {
                    let _ = child.start_kill();
                }
                return Err(ProxyError::NotReady {
                    url,
                    after: START_TIMEOUT,
                    log_tail: log_tail(&self.settings.log_path()),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Base URL of Traefik's API (loopback).
    pub fn api_url(&self) -> String {
        self.api_url.clone()
    }

    /// A [`Proxy`] writing into this Traefik's dynamic directory.
    pub fn proxy(&self) -> Proxy {
        Proxy::new(self.settings.dynamic_dir.clone(), self.api_url.clone())
    }

    pub fn settings(&self) -> &TraefikSettings {
        &self.settings
    }

    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// Was this Traefik left running by an earlier server process and adopted?
    pub fn adopted(&self) -> bool {
        self.child.is_none()
    }

    /// The last lines of Traefik's own log.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.settings.log_path(), lines)
    }

    /// Is the process still running?
    pub fn is_running(&mut self) -> bool {
        match (self.child.as_mut(), self.pid) {
            (Some(child), _) => matches!(child.try_wait(), Ok(None)),
            (None, Some(pid)) => pid_alive(pid),
            (None, None) => false,
        }
    }

    /// Like [`TraefikProcess::start`], but first looks for the Traefik an
    /// earlier server process started with these settings (its pid is in
    /// `state_dir/traefik.pid`). If it still runs with the same static
    /// configuration and answers, it is adopted as is: routing goes on without
    /// a gap across a server restart, even after SIGKILL. If it runs with a
    /// different configuration, it is stopped and a new one started.
    pub async fn start_or_adopt(s: &TraefikSettings) -> Result<TraefikProcess, ProxyError> {
        if let Some(pid) = read_pid(&s.pid_path())
            && pid_alive(pid)
            && runs_config(pid, &s.static_config_path())
        {
            let same_config = std::fs::read_to_string(s.static_config_path())
                .ok()
                .as_deref()
                == Some(render_static_config(s).as_str());
            let api_url = format!("http://127.0.0.1:{}", s.api_port);
            if same_config && ping(&api_url).await {
                tracing::info!(pid, api = %api_url, "adopted the running Traefik");
                return Ok(TraefikProcess {
                    child: None,
                    pid: Some(pid),
                    settings: s.clone(),
                    api_url,
                });
            }
            tracing::info!(
                pid,
                "stopping the Traefik left running with another configuration"
            );
            terminate(pid, None, Duration::from_secs(12)).await;
        }
        Self::start(s).await
    }

    /// Stops Traefik: SIGTERM (in-flight requests finish, up to its 10 s grace
    /// time), then SIGKILL if it is still there after 12 s.
    pub async fn stop(mut self) -> Result<(), ProxyError> {
        let pid = self.pid.take();
        let child = self.child.take();
        let _ = std::fs::remove_file(self.settings.pid_path());
        match pid {
            Some(pid) => {
                if terminate(pid, child, Duration::from_secs(12)).await {
                    Ok(())
                } else {
                    Err(ProxyError::Api {
                        url: self.api_url.clone(),
                        reason: format!("Traefik (pid {pid}) did not exit after SIGKILL"),
                    })
                }
            }
            None => Ok(()),
        }
    }
}

async fn ping(api_url: &str) -> bool {
    let Ok(client) = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
    else {
        return false;
    };
    matches!(client.get(format!("{api_url}/ping")).send().await, Ok(r) if r.status().is_success())
}

fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Does the process exist (and is not a zombie)?
fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// Is `pid` a process started with `--configFile=<config>` (so a recycled pid
/// is never mistaken for our Traefik)?
fn runs_config(pid: u32, config: &Path) -> bool {
    let want = format!("--configFile={}", config.display());
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| c.split(|b| *b == 0).any(|arg| arg == want.as_bytes()))
        .unwrap_or(false)
}

fn signal(pid: u32, sig: &str) {
    // std has no kill(2) for a pid it did not spawn; the kill utility is everywhere.
    let _ = std::process::Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// SIGTERM, wait up to `grace`, then SIGKILL; true when the process is gone.
async fn terminate(pid: u32, mut child: Option<Child>, grace: Duration) -> bool {
    let gone = |child: &mut Option<Child>| match child.as_mut() {
        Some(c) => !matches!(c.try_wait(), Ok(None)),
        None => !pid_alive(pid),
    };
    if gone(&mut child) {
        return true;
    }
    signal(pid, "TERM");
    let deadline = tokio::time::Instant::now() + grace;
    while tokio::time::Instant::now() < deadline {
        if gone(&mut child) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    match child.as_mut() {
        Some(c) => {
            let _ = c.start_kill();
        }
        None => signal(pid, "KILL"),
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while tokio::time::Instant::now() < deadline {
        if gone(&mut child) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}
