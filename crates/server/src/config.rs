//! Server settings. Every setting has an environment variable; the defaults
//! are the embedded single-machine set-up (SQLite in the data directory, the
//! local Docker Engine, a Traefik the server starts itself).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use secrecy::SecretString;

/// How the server reaches Traefik.
#[derive(Debug, Clone)]
pub enum ProxyMode {
    /// Start Traefik ourselves with these ports.
    Embedded {
        bin: PathBuf,
        http_port: u16,
        api_port: u16,
    },
    /// A Traefik someone else runs, whose file provider watches `dynamic_dir`.
    External {
        dynamic_dir: PathBuf,
        api_url: String,
    },
}

#[derive(Debug, Clone)]
pub struct RegistrySettings {
    /// `host[:port][/prefix]`, e.g. `127.0.0.1:5000` or `ghcr.io/hanzoai`.
    pub prefix: String,
    pub username: Option<String>,
    pub password: Option<SecretString>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub database_url: String,
    pub listen: SocketAddr,
    pub registry: Option<RegistrySettings>,
    pub proxy: ProxyMode,
    /// Apps without a domain are routed at `<app>.<org>.<domain_suffix>`.
    pub domain_suffix: String,
    /// Scheme + port that users reach Traefik at, for the URLs we print.
    pub public_http_port: u16,
    /// `HANZO_BASE_IMAGE_*` variables as given (runtime key → base image).
    pub base_images: Vec<(String, String)>,
    pub ca_bundle: Option<PathBuf>,
    pub build_concurrency: usize,
    pub build_timeout: Duration,
    pub build_memory_bytes: i64,
    pub build_nano_cpus: i64,
    /// How often the reconciler looks at every application even without a change.
    pub resync_interval: Duration,
    /// Time old instances keep serving in-flight requests after leaving the proxy.
    pub drain: Duration,
    /// Grace period between SIGTERM and SIGKILL when stopping an instance.
    pub stop_grace: Duration,
    /// Name of this installation on a shared Docker Engine: instances carry it
    /// and the server only ever sees and stops its own.
    pub scope: String,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn parse_var<T: std::str::FromStr>(name: &str, default: T) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    match var(name) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|e| anyhow::anyhow!("{name}={v:?} is not valid ({e}) — fix or unset it")),
    }
}

fn parse_secs(name: &str, default: f64) -> Result<Duration> {
    let secs: f64 = parse_var(name, default)?;
    if !(0.0..=86_400.0).contains(&secs) {
        bail!("{name}={secs} is out of range — give seconds between 0 and 86400");
    }
    Ok(Duration::from_secs_f64(secs))
}

impl Config {
    /// Reads the settings from the environment (`HANZO_*`, `DATABASE_URL`).
    pub fn from_env() -> Result<Config> {
        let data_dir = var("HANZO_DATA_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(default_data_dir);
        let database_url = var("DATABASE_URL")
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("hanzo.db").display()));
        let listen: SocketAddr = parse_var("HANZO_LISTEN", SocketAddr::from(([0, 0, 0, 0], 3000)))?;

        let registry = var("HANZO_REGISTRY").map(|prefix| RegistrySettings {
            prefix: prefix.trim_end_matches('/').to_string(),
            username: var("HANZO_REGISTRY_USERNAME"),
            password: var("HANZO_REGISTRY_PASSWORD").map(SecretString::from),
        });

        let http_port: u16 = parse_var("HANZO_PROXY_HTTP_PORT", 80)?;
        let proxy = match (
            var("HANZO_TRAEFIK_DYNAMIC_DIR"),
            var("HANZO_TRAEFIK_API_URL"),
        ) {
            (Some(dir), Some(api)) => ProxyMode::External {
                dynamic_dir: dir.into(),
                api_url: api,
            },
            (None, None) => ProxyMode::Embedded {
                bin: var("HANZO_TRAEFIK_BIN")
                    .unwrap_or_else(|| "traefik".into())
                    .into(),
                http_port,
                api_port: parse_var("HANZO_PROXY_API_PORT", 8099)?,
            },
            _ => bail!(
                "HANZO_TRAEFIK_DYNAMIC_DIR and HANZO_TRAEFIK_API_URL go together — set both to use an external Traefik, or neither to let the server start one"
            ),
        };

        // HANZO_BASE_IMAGE_NODE_20=node:20-bookworm-slim and the like, applied by the build crate.
        let base_images: Vec<(String, String)> = std::env::vars()
            .filter(|(k, _)| k.starts_with("HANZO_BASE_IMAGE_"))
            .collect();

        let ca_bundle = var("HANZO_BUILD_CA_BUNDLE").map(PathBuf::from);
        if let Some(ca) = &ca_bundle
            && !ca.is_file()
        {
            bail!(
                "HANZO_BUILD_CA_BUNDLE={} is not a readable file — point it at a PEM bundle",
                ca.display()
            );
        }

        Ok(Config {
            database_url,
            listen,
            registry,
            proxy,
            domain_suffix: var("HANZO_DOMAIN_SUFFIX").unwrap_or_else(|| "localhost".into()),
            public_http_port: http_port,
            base_images,
            ca_bundle,
            build_concurrency: parse_var("HANZO_BUILD_CONCURRENCY", 2usize)?.max(1),
            build_timeout: parse_secs("HANZO_BUILD_TIMEOUT_SECS", 900.0)?,
            build_memory_bytes: parse_var("HANZO_BUILD_MEMORY_BYTES", 4_i64 * 1024 * 1024 * 1024)?,
            build_nano_cpus: parse_var("HANZO_BUILD_NANO_CPUS", 2_000_000_000_i64)?,
            resync_interval: parse_secs("HANZO_RESYNC_SECS", 10.0)?,
            drain: parse_secs("HANZO_DRAIN_SECS", 1.0)?,
            stop_grace: parse_secs("HANZO_STOP_GRACE_SECS", 10.0)?,
            scope: var("HANZO_SCOPE").unwrap_or_else(|| "default".into()),
            data_dir,
        })
    }

    /// Directory Traefik's file provider watches.
    pub fn dynamic_dir(&self) -> PathBuf {
        match &self.proxy {
            ProxyMode::External { dynamic_dir, .. } => dynamic_dir.clone(),
            ProxyMode::Embedded { .. } => self.data_dir.join("traefik").join("dynamic"),
        }
    }

    pub fn builds_dir(&self) -> PathBuf {
        self.data_dir.join("builds")
    }

    /// The URL a user reaches a host at through the proxy.
    pub fn public_url(&self, host: &str, path: Option<&str>) -> String {
        let port = if self.public_http_port == 80 {
            String::new()
        } else {
            format!(":{}", self.public_http_port)
        };
        format!("http://{host}{port}{}", path.unwrap_or("/"))
    }

    pub fn default_host(&self, org: &str, app: &str) -> String {
        format!("{app}.{org}.{}", self.domain_suffix)
    }

    pub fn ensure_dirs(&self) -> Result<()> {
        for d in [self.data_dir.clone(), self.builds_dir(), self.dynamic_dir()] {
            std::fs::create_dir_all(&d).with_context(|| {
                format!(
                    "cannot create {} — check permissions or set HANZO_DATA_DIR",
                    d.display()
                )
            })?;
        }
        Ok(())
    }
}

fn default_data_dir() -> PathBuf {
    if let Some(x) = var("XDG_DATA_HOME") {
        return PathBuf::from(x).join("hanzo");
    }
    match var("HOME") {
        Some(h) => PathBuf::from(h).join(".local/share/hanzo"),
        None => PathBuf::from("/var/lib/hanzo"),
    }
}
