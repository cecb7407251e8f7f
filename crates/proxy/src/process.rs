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

/// A running Traefik started by the platform. Dropping it kills Traefik.
#[derive(Debug)]
pub struct TraefikProcess {
    child: Child,
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
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| ProxyError::Spawn {
                bin: s.bin.clone(),
                source,
            })?;
        let api_url = format!("http://127.0.0.1:{}", s.api_port);
        let mut process = TraefikProcess {
            child,
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
            if let Ok(Some(status)) = self.child.try_wait() {
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
                let _ = self.child.start_kill();
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
        self.child.id()
    }

    /// The last lines of Traefik's own log.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.settings.log_path(), lines)
    }

    /// Is the process still running?
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Stops Traefik and waits for it to exit.
    pub async fn stop(mut self) -> Result<(), ProxyError> {
        let _ = self.child.start_kill();
        match tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await {
            Ok(_) => Ok(()),
            Err(_) => Err(ProxyError::Api {
                url: self.api_url.clone(),
                reason: "Traefik did not exit within 10 s of SIGKILL".into(),
            }),
        }
    }
}
