//! An in-process API server for tests: the real router, store and Docker
//! client, no build workers, no reconciler, no Traefik process.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use hanzo_core::Role;
use hanzo_server::auth::{new_token_secret, token_hash};
use hanzo_server::config::Config;
use hanzo_server::state::AppState;
use hanzo_store::Store;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub struct TestServer {
    pub url: String,
    pub state: AppState,
    pub shutdown: CancellationToken,
    _dir: tempfile::TempDir,
    pg_db: Option<(String, String)>,
}

/// The databases the API tests run on: SQLite always, PostgreSQL when configured.
pub fn backends() -> Vec<&'static str> {
    let mut v = vec!["sqlite"];
    if std::env::var("HANZO_TEST_POSTGRES_URL").is_ok() {
        v.push("postgres");
    } else if std::env::var("HANZO_REQUIRE_SERVICES").is_ok_and(|v| v == "1") {
        panic!("HANZO_TEST_POSTGRES_URL is required (run scripts/test)");
    } else {
        eprintln!("skipped: HANZO_TEST_POSTGRES_URL not set; PostgreSQL not tested");
    }
    v
}

async fn fresh_postgres() -> (String, String, String) {
    let admin = std::env::var("HANZO_TEST_POSTGRES_URL").expect("postgres url");
    let name = format!("hanzo_api_{}", uuid::Uuid::new_v4().simple());
    let out = std::process::Command::new("psql")
        .arg(&admin)
        .arg("-qAtc")
        .arg(format!("CREATE DATABASE {name}"))
        .output()
        .expect("psql");
    assert!(out.status.success(), "create database: {}", String::from_utf8_lossy(&out.stderr));
    let base = admin.rsplit_once('/').map(|(b, _)| b.to_string()).expect("url with a database");
    (format!("{base}/{name}"), admin, name)
}

impl TestServer {
    pub async fn start(backend: &str) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let (db_url, pg_db) = if backend == "postgres" {
            let (url, admin, name) = fresh_postgres().await;
            (url, Some((admin, name)))
        } else {
            (format!("sqlite://{}", dir.path().join("hanzo.db").display()), None)
        };
        // SAFETY of env: tests set nothing; the config is built by hand.
        let config = Config {
            data_dir: dir.path().to_path_buf(),
            database_url: db_url.clone(),
            listen: "127.0.0.1:0".parse().expect("addr"),
            registry: None,
            proxy: hanzo_server::config::ProxyMode::External {
                dynamic_dir: dir.path().join("dynamic"),
                api_url: "http://127.0.0.1:9".into(),
            },
            domain_suffix: "localhost".into(),
            public_http_port: 80,
            base_images: vec![],
            ca_bundle: None,
            build_concurrency: 1,
            build_timeout: std::time::Duration::from_secs(60),
            build_memory_bytes: 1 << 30,
            build_nano_cpus: 1_000_000_000,
            resync_interval: std::time::Duration::from_secs(60),
            drain: std::time::Duration::from_millis(10),
            stop_grace: std::time::Duration::from_secs(1),
            scope: "api-test".into(),
        };
        config.ensure_dirs().expect("dirs");
        let store = hanzo_store::connect(&db_url).await.expect("store");
        let engine = Arc::new(hanzo_server::engine::Engine::new(hanzo_build::BuildSettings::default(), &format!("api-test-{}", uuid::Uuid::new_v4().simple())));
        let shutdown = CancellationToken::new();
        let state = AppState {
            proxy: Arc::new(hanzo_proxy::Proxy::new(config.dynamic_dir(), "http://127.0.0.1:9".into())),
            config: Arc::new(config),
            store,
            target: engine.clone(),
            engine,
            reconcile: Arc::new(Notify::new()),
            builds: Arc::new(Notify::new()),
            running_builds: Arc::new(Mutex::new(HashMap::new())),
            health: Arc::default(),
            webhook_key: Arc::new(b"test webhook key".to_vec()),
            shutdown: shutdown.clone(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let app = hanzo_server::api::router(state.clone());
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await;
        });
        TestServer { url, state, shutdown, _dir: dir, pg_db }
    }

    pub fn store(&self) -> &dyn Store {
        self.state.store.as_ref()
    }

    /// A user with these roles and a fresh token.
    pub async fn user(&self, id: &str, global_admin: bool, roles: &[(&str, Role)]) -> String {
        self.store().upsert_user(id, &format!("{id}@example.com"), global_admin).await.expect("user");
        for (org, role) in roles {
            self.store().ensure_org(org).await.expect("org");
            self.store().set_membership(id, org, *role).await.expect("membership");
        }
        let secret = new_token_secret();
        self.store().create_token(id, "test", &token_hash(&secret), None).await.expect("token");
        secret
    }

    pub fn client(&self) -> reqwest::Client {
        reqwest::Client::new()
    }

    pub async fn call(&self, token: &str, method: reqwest::Method, path: &str, body: Option<serde_json::Value>) -> (u16, serde_json::Value) {
        let mut req = self.client().request(method, format!("{}{path}", self.url)).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some((admin, name)) = self.pg_db.take() {
            let _ = std::process::Command::new("psql")
                .arg(&admin)
                .arg("-qAtc")
                .arg(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .output();
        }
    }
}
