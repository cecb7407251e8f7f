//! The CLI's side of the REST API: where the server is, the token, and errors
//! turned into one sentence.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// `~/.config/hanzo/config.json`; `HANZO_SERVER` and `HANZO_TOKEN` override it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CliConfig {
    pub server: Option<String>,
    pub token: Option<String>,
}

pub fn config_path() -> PathBuf {
    if let Ok(p) = std::env::var("HANZO_CONFIG")
        && !p.is_empty()
    {
        return PathBuf::from(p);
    }
    let base = std::env::var("XDG_CONFIG_HOME")
        .ok()
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var("HOME")
                .ok()
                .map(|h| PathBuf::from(h).join(".config"))
        })
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("hanzo").join("config.json")
}

impl CliConfig {
    pub fn load() -> Result<CliConfig> {
        let path = config_path();
        let mut cfg = match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).with_context(|| {
                format!(
                    "{} is not valid JSON — fix it or run `hanzo login` again",
                    path.display()
                )
            })?,
            Err(_) => CliConfig::default(),
        };
        if let Ok(s) = std::env::var("HANZO_SERVER")
            && !s.is_empty()
        {
            cfg.server = Some(s);
        }
        if let Ok(t) = std::env::var("HANZO_TOKEN")
            && !t.is_empty()
        {
            cfg.token = Some(t);
        }
        Ok(cfg)
    }

    /// Like [`CliConfig::load`], but a damaged file counts as empty, so that
    /// `hanzo login` can write a good one over it.
    pub fn load_or_default() -> CliConfig {
        CliConfig::load().unwrap_or_else(|_| CliConfig {
            server: std::env::var("HANZO_SERVER").ok().filter(|s| !s.is_empty()),
            token: std::env::var("HANZO_TOKEN").ok().filter(|t| !t.is_empty()),
        })
    }

    pub fn save(&self) -> Result<PathBuf> {
        let path = config_path();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let text = serde_json::to_string_pretty(self)?;
        #[cfg(unix)]
        {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            f.write_all(text.as_bytes())?;
        }
        #[cfg(not(unix))]
        std::fs::write(&path, text)?;
        Ok(path)
    }
}

pub struct Client {
    http: reqwest::Client,
    pub server: String,
    token: Option<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
}

impl Client {
    pub fn new(cfg: &CliConfig) -> Result<Client> {
        let server = cfg
            .server
            .clone()
            .unwrap_or_else(|| "http://127.0.0.1:3000".to_string())
            .trim_end_matches('/')
            .to_string();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(120))
            .user_agent(concat!("hanzo-cli/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Client {
            http,
            server,
            token: cfg.token.clone(),
        })
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut req = self.http.request(method, format!("{}{path}", self.server));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        req
    }

    async fn send<T: DeserializeOwned>(&self, req: reqwest::RequestBuilder) -> Result<T> {
        let resp = req.send().await.map_err(|e| {
            if e.is_connect() || e.is_timeout() {
                anyhow!(
                    "cannot reach the Hanzo server at {} — start it with `hanzo server` or point HANZO_SERVER at it",
                    self.server
                )
            } else {
                anyhow!("request to {} failed: {e}", self.server)
            }
        })?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .context("the server's answer was cut off — try again")?;
        if !status.is_success() {
            let msg = serde_json::from_slice::<ErrorBody>(&bytes)
                .map(|b| b.error)
                .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).trim().to_string());
            bail!(ApiFailure {
                status: status.as_u16(),
                message: msg
            });
        }
        if bytes.is_empty() {
            return serde_json::from_str("null").context("empty answer");
        }
        serde_json::from_slice(&bytes).context(
            "the server answered with something this CLI does not understand — update the CLI",
        )
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.send(self.request(reqwest::Method::GET, path)).await
    }

    pub async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<T> {
        self.send(self.request(reqwest::Method::POST, path).json(body))
            .await
    }

    pub async fn put<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<T> {
        self.send(self.request(reqwest::Method::PUT, path).json(body))
            .await
    }

    async fn raw(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response> {
        let resp = req.send().await.map_err(|e| {
            if e.is_connect() {
                anyhow!(
                    "cannot reach the Hanzo server at {} — start it with `hanzo server` or point HANZO_SERVER at it",
                    self.server
                )
            } else {
                anyhow!("request to {} failed: {e}", self.server)
            }
        })?;
        let status = resp.status();
        if !status.is_success() {
            let bytes = resp.bytes().await.unwrap_or_default();
            let msg = serde_json::from_slice::<ErrorBody>(&bytes)
                .map(|b| b.error)
                .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).trim().to_string());
            bail!(ApiFailure {
                status: status.as_u16(),
                message: msg
            });
        }
        Ok(resp)
    }

    /// A text (not JSON) answer, e.g. logs or a CSV export.
    pub async fn get_text(&self, path: &str) -> Result<String> {
        let resp = self.raw(self.request(reqwest::Method::GET, path)).await?;
        resp.text()
            .await
            .context("the server's answer was cut off — try again")
    }

    /// A streamed text answer, handed over chunk by chunk until the server ends it.
    pub async fn stream_text(&self, path: &str, mut each: impl FnMut(&str)) -> Result<()> {
        let req = self.http.get(format!("{}{path}", self.server));
        let req = match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        // No overall timeout: a follow lasts as long as the user wants.
        let mut resp = self
            .raw(req.timeout(Duration::from_secs(365 * 24 * 3600)))
            .await?;
        while let Some(chunk) = resp
            .chunk()
            .await
            .context("the log stream was interrupted — run the command again")?
        {
            each(&String::from_utf8_lossy(&chunk));
        }
        Ok(())
    }

    pub async fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.send(self.request(reqwest::Method::DELETE, path)).await
    }
}

/// An error answer of the API.
#[derive(Debug)]
pub struct ApiFailure {
    pub status: u16,
    pub message: String,
}

impl std::fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiFailure {}
