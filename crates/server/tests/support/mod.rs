//! An in-process API server for tests: the real router, store and Docker
//! client, no build workers, no reconciler, no Traefik process.
//!
//! Every answer [`TestServer::request`] receives is checked against the
//! OpenAPI document: its status must be documented for the route and method,
//! and a JSON body must match the documented schema. So every API test is
//! also a test of the document.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use hanzo_core::Role;
use hanzo_server::auth::{new_token_secret, token_hash};
use hanzo_server::config::Config;
use hanzo_server::state::AppState;
use hanzo_store::Store;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The user agent the harness sends, so audit rows can be checked.
pub const USER_AGENT: &str = "hanzo-api-tests/1";

pub struct TestServer {
    pub url: String,
    pub state: AppState,
    pub shutdown: CancellationToken,
    pub backend: &'static str,
    _dir: tempfile::TempDir,
    pg_db: Option<(String, String)>,
}

fn services_required() -> bool {
    std::env::var("HANZO_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// The databases the API tests run on: SQLite always, PostgreSQL when configured.
pub fn backends() -> Vec<&'static str> {
    let mut v = vec!["sqlite"];
    if std::env::var("HANZO_TEST_POSTGRES_URL").is_ok() {
        v.push("postgres");
    } else if services_required() {
        panic!("HANZO_TEST_POSTGRES_URL is required (run scripts/test)");
    } else {
        eprintln!("skipped: HANZO_TEST_POSTGRES_URL not set; PostgreSQL not tested");
    }
    v
}

fn psql(url: &str, sql: &str) -> std::process::Output {
    std::process::Command::new("psql")
        .arg(url)
        .arg("-qAtc")
        .arg(sql)
        .output()
        .expect("psql runs")
}

fn fresh_postgres() -> (String, String, String) {
    let admin = std::env::var("HANZO_TEST_POSTGRES_URL").expect("postgres url");
    let name = format!("hanzo_api_{}", uuid::Uuid::new_v4().simple());
    let out = psql(&admin, &format!("CREATE DATABASE {name}"));
    assert!(
        out.status.success(),
        "create database: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (base, _) = admin.rsplit_once('/').expect("url with a database");
    (format!("{base}/{name}"), admin, name)
}

impl TestServer {
    pub async fn start(backend: &'static str) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let (db_url, pg_db) = if backend == "postgres" {
            let (url, admin, name) = fresh_postgres();
            (url, Some((admin, name)))
        } else {
            (
                format!("sqlite://{}", dir.path().join("hanzo.db").display()),
                None,
            )
        };
        // Defaults from the environment, then everything that matters set here.
        let mut config = Config::from_env().expect("server settings");
        config.data_dir = dir.path().to_path_buf();
        config.database_url = db_url.clone();
        config.listen = "127.0.0.1:0".parse().expect("addr");
        config.registry = None;
        config.proxy = hanzo_server::config::ProxyMode::External {
            dynamic_dir: dir.path().join("dynamic"),
            api_url: "http://127.0.0.1:9".into(),
        };
        config.build_concurrency = 1;
        config.stop_grace = std::time::Duration::from_secs(1);
        config.ensure_dirs().expect("dirs");
        let store = hanzo_store::connect(&db_url).await.expect("store");
        // A scope of its own: nothing this server does touches other installations' instances.
        config.scope = format!(
            "apitest-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let engine = Arc::new(hanzo_server::engine::Engine::new(
            hanzo_build::BuildSettings::default(),
            &config.scope,
        ));
        let shutdown = CancellationToken::new();
        let state = AppState {
            proxy: Arc::new(hanzo_proxy::Proxy::new(
                config.dynamic_dir(),
                "http://127.0.0.1:9".into(),
            )),
            config: Arc::new(config),
            store,
            target: engine.clone(),
            engine,
            reconcile: Arc::new(Notify::new()),
            builds: Arc::new(Notify::new()),
            running_builds: Arc::new(Mutex::new(HashMap::new())),
            webhook_key: Arc::new(b"test webhook key".to_vec()),
            health: Arc::new(hanzo_server::health::HealthBook::default()),
            shutdown: shutdown.clone(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let app = hanzo_server::api::router(state.clone());
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let _ = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
        });
        TestServer {
            url,
            state,
            shutdown,
            backend,
            _dir: dir,
            pg_db,
        }
    }

    pub fn store(&self) -> &dyn Store {
        self.state.store.as_ref()
    }

    /// Whether the Docker Engine answers; when it does not, tests that need it
    /// print `skipped` (or fail under `HANZO_REQUIRE_SERVICES=1`).
    pub async fn docker_up(&self) -> bool {
        match self.state.target.ping().await {
            Ok(()) => true,
            Err(e) if services_required() => panic!("Docker is required: {e}"),
            Err(e) => {
                eprintln!("skipped: Docker does not answer ({e}); Docker-dependent checks not run");
                false
            }
        }
    }

    /// A user with these roles and a fresh token.
    pub async fn user(&self, id: &str, global_admin: bool, roles: &[(&str, Role)]) -> String {
        self.store()
            .upsert_user(id, &format!("{id}@example.com"), global_admin)
            .await
            .expect("user");
        for (org, role) in roles {
            self.store().ensure_org(org).await.expect("org");
            self.store()
                .set_membership(id, org, *role)
                .await
                .expect("membership");
        }
        let secret = new_token_secret();
        self.store()
            .create_token(id, "test", &token_hash(&secret), None)
            .await
            .expect("token");
        secret
    }

    /// An application registered directly in the store.
    pub async fn app(&self, org: &str, name: &str) -> hanzo_core::Application {
        self.store().ensure_org(org).await.expect("org");
        self.store()
            .create_app(
                hanzo_store::NewApp {
                    name: name.into(),
                    org: org.into(),
                    repo: "https://git.example.com/repo.git".into(),
                    branch: "main".into(),
                    runtime: "auto".into(),
                },
                None,
            )
            .await
            .expect("app")
    }

    pub fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .build()
            .expect("client")
    }

    /// A JSON request with a token; the answer is checked against the OpenAPI document.
    pub async fn call(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .client()
            .request(method.clone(), format!("{}{path}", self.url))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        self.request(method, path, req).await
    }

    /// Sends a request built by the caller; the answer is checked against the OpenAPI document.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        req: reqwest::RequestBuilder,
    ) -> (u16, Value) {
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let ctype = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let text = resp.text().await.unwrap_or_default();
        let value = if ctype.starts_with("application/json") {
            serde_json::from_str(&text).unwrap_or_else(|e| {
                panic!("{method} {path}: {status} body is not JSON ({e}): {text}")
            })
        } else {
            Value::String(text)
        };
        if let Err(e) = check_response(&method, path, status, &ctype, &value) {
            panic!(
                "{method} {path} answered {status} against the OpenAPI document: {e}\nbody: {value}"
            );
        }
        (status, value)
    }

    /// Audit rows (newest first) straight from the store.
    pub async fn audit_rows(&self, action: &str, app: Option<&str>) -> Vec<hanzo_core::AuditEntry> {
        self.store()
            .query_audit(&hanzo_store::AuditQuery {
                action: Some(action.into()),
                app: app.map(str::to_string),
                ..Default::default()
            })
            .await
            .expect("audit")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some((admin, name)) = self.pg_db.take() {
            let _ = psql(
                &admin,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            );
        }
    }
}

// ---- the OpenAPI document as a test oracle ----------------------------------

pub fn document() -> Value {
    serde_json::from_str(hanzo_server::api::openapi::DOCUMENT).expect("openapi.json is JSON")
}

/// The documented path template matching a concrete path (`/api/v1/apps/x` → `/api/v1/apps/{app}`).
pub fn template_of(doc: &Value, path: &str) -> Option<String> {
    let path = path.split('?').next().unwrap_or(path);
    let segs: Vec<&str> = path.split('/').collect();
    let paths = doc["paths"].as_object()?;
    // Prefer literal segments over parameters (`/apps/x/env` before `/apps/{app}/{x}`).
    let mut best: Option<(usize, &String)> = None;
    for t in paths.keys() {
        let tsegs: Vec<&str> = t.split('/').collect();
        if tsegs.len() != segs.len() {
            continue;
        }
        let mut literal = 0;
        let fits = tsegs.iter().zip(&segs).all(|(t, s)| {
            if t.starts_with('{') {
                !s.is_empty()
            } else {
                literal += 1;
                t == s
            }
        });
        if fits && best.is_none_or(|(l, _)| literal > l) {
            best = Some((literal, t));
        }
    }
    best.map(|(_, t)| t.clone())
}

fn check_response(
    method: &Method,
    path: &str,
    status: u16,
    ctype: &str,
    body: &Value,
) -> Result<(), String> {
    let doc = document();
    let template =
        template_of(&doc, path).ok_or_else(|| format!("{path} is not in the document"))?;
    let op = &doc["paths"][&template][method.as_str().to_ascii_lowercase()];
    if op.is_null() {
        return Err(format!("{method} {template} is not documented"));
    }
    let mut resp = &op["responses"][status.to_string()];
    if resp.is_null() {
        return Err(format!(
            "status {status} is not documented for {method} {template}"
        ));
    }
    if let Some(r) = resp["$ref"].as_str() {
        resp = resolve(&doc, r);
    }
    let Some(content) = resp["content"].as_object() else {
        return if matches!(body, Value::String(s) if s.is_empty()) {
            Ok(())
        } else {
            Err(format!("no body is documented, got {body}"))
        };
    };
    let media = ctype.split(';').next().unwrap_or("").trim();
    let schema = &content
        .get(media)
        .ok_or_else(|| format!("content type {media:?} is not documented"))?["schema"];
    validate(&doc, schema, body, "$")
}

fn resolve<'a>(doc: &'a Value, r: &str) -> &'a Value {
    let mut v = doc;
    for part in r.trim_start_matches("#/").split('/') {
        v = &v[part];
    }
    assert!(!v.is_null(), "dangling $ref {r}");
    v
}

fn type_matches(t: &str, v: &Value) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        _ => false,
    }
}

/// A JSON Schema validator for the keywords the document uses: `$ref`, `type`
/// (one or several), `properties`, `required`, `items`, `enum`, `const`,
/// `oneOf`, `allOf`, `minimum`, `maximum` and the `uuid` and `date-time` formats.
pub fn validate(doc: &Value, schema: &Value, v: &Value, at: &str) -> Result<(), String> {
    if let Some(r) = schema["$ref"].as_str() {
        return validate(doc, resolve(doc, r), v, at);
    }
    match &schema["type"] {
        Value::String(t) if !type_matches(t, v) => {
            return Err(format!("{at}: expected {t}, got {v}"));
        }
        Value::Array(ts) if !ts.iter().any(|t| type_matches(t.as_str().unwrap_or(""), v)) => {
            return Err(format!("{at}: expected one of {ts:?}, got {v}"));
        }
        _ => {}
    }
    if let Some(e) = schema["enum"].as_array()
        && !e.contains(v)
    {
        return Err(format!("{at}: {v} is not one of {e:?}"));
    }
    if !schema["const"].is_null() && schema["const"] != *v {
        return Err(format!("{at}: {v} is not {}", schema["const"]));
    }
    if let (Some(min), Some(n)) = (schema["minimum"].as_f64(), v.as_f64())
        && n < min
    {
        return Err(format!("{at}: {n} < {min}"));
    }
    if let (Some(max), Some(n)) = (schema["maximum"].as_f64(), v.as_f64())
        && n > max
    {
        return Err(format!("{at}: {n} > {max}"));
    }
    if let (Some(f), Some(s)) = (schema["format"].as_str(), v.as_str()) {
        let ok = match f {
            "uuid" => uuid::Uuid::parse_str(s).is_ok(),
            "date-time" => chrono::DateTime::parse_from_rfc3339(s).is_ok(),
            _ => true,
        };
        if !ok {
            return Err(format!("{at}: {s:?} is not a {f}"));
        }
    }
    if let Some(all) = schema["allOf"].as_array() {
        for s in all {
            validate(doc, s, v, at)?;
        }
    }
    if let Some(one) = schema["oneOf"].as_array() {
        let errors: Vec<String> = one
            .iter()
            .filter_map(|s| validate(doc, s, v, at).err())
            .collect();
        if one.len() - errors.len() != 1 {
            return Err(format!(
                "{at}: matches {} of the oneOf alternatives, not one ({errors:?})",
                one.len() - errors.len()
            ));
        }
    }
    if let Value::Object(o) = v {
        if let Some(req) = schema["required"].as_array() {
            for r in req.iter().filter_map(Value::as_str) {
                if !o.contains_key(r) {
                    return Err(format!("{at}: required field {r} is missing"));
                }
            }
        }
        if let Some(props) = schema["properties"].as_object() {
            for (k, s) in props {
                if let Some(x) = o.get(k) {
                    validate(doc, s, x, &format!("{at}.{k}"))?;
                }
            }
        }
    }
    if let (Value::Array(items), Some(s)) = (v, schema.get("items")) {
        for (i, x) in items.iter().enumerate() {
            validate(doc, s, x, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}

/// A JSON body for tests that do not care.
pub fn empty() -> Option<Value> {
    Some(json!({}))
}
