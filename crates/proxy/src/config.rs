//! Rendering of Traefik's static configuration and of one application's
//! dynamic configuration. Pure functions, snapshot-tested.

use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Name of the ACME certificate resolver the static configuration defines
/// (when an e-mail is set) and TLS routers refer to.
pub const ACME_RESOLVER: &str = "acme";
/// The loopback entry point that serves the API, ping and metrics.
pub const INTERNAL_ENTRYPOINT: &str = "traefik";
/// Public plain-HTTP entry point.
pub const WEB_ENTRYPOINT: &str = "web";
/// Public HTTPS entry point (when `https_port` is set).
pub const WEBSECURE_ENTRYPOINT: &str = "websecure";

/// How to run Traefik.
#[derive(Debug, Clone)]
pub struct TraefikSettings {
    pub bin: PathBuf,
    pub http_port: u16,
    pub https_port: Option<u16>,
    /// API, ping and metrics, on 127.0.0.1 only.
    pub api_port: u16,
    /// Directory of the file provider: one `<key>.yaml` per application.
    pub dynamic_dir: PathBuf,
    /// Static configuration, Traefik's own log, access log, ACME storage.
    pub state_dir: PathBuf,
    pub acme_email: Option<String>,
    pub acme_ca_server: Option<String>,
}

impl TraefikSettings {
    pub fn static_config_path(&self) -> PathBuf {
        self.state_dir.join("traefik.yaml")
    }
    pub fn log_path(&self) -> PathBuf {
        self.state_dir.join("traefik.log")
    }
    pub fn access_log_path(&self) -> PathBuf {
        self.state_dir.join("access.log")
    }
    /// Pid of the Traefik the platform started, for adoption after a restart.
    pub fn pid_path(&self) -> PathBuf {
        self.state_dir.join("traefik.pid")
    }
    pub fn acme_storage_path(&self) -> PathBuf {
        self.state_dir.join("acme.json")
    }
}

/// One way in to an application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub host: String,
    pub path_prefix: Option<String>,
}

/// Everything Traefik needs to route to one application (one service).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppRoutes {
    /// File, router and service name, e.g. `hanzo-hello`; lowercase letters,
    /// digits and `-` (see [`valid_key`]).
    pub key: String,
    pub routes: Vec<Route>,
    /// Upstream URLs, e.g. `http://172.18.0.3:3000`.
    pub servers: Vec<String>,
    /// Entry points the routers listen on, e.g. `["web"]`.
    pub entrypoints: Vec<String>,
    /// Terminate TLS with the ACME resolver; also turns on HSTS.
    pub tls: bool,
}

fn to_yaml<T: Serialize>(value: &T) -> String {
    match serde_saphyr::to_string(value) {
        Ok(s) => s,
        // JSON is YAML too: never fails for these plain structures, and keeps
        // the file valid if the YAML writer ever refuses something.
        Err(_) => serde_json::to_string_pretty(value).unwrap_or_default(),
    }
}

// ---- static configuration --------------------------------------------------------------

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StaticConfig {
    global: Global,
    entry_points: BTreeMap<&'static str, EntryPoint>,
    providers: Providers,
    api: Api,
    ping: EntryPointRef,
    metrics: Metrics,
    log: Log,
    access_log: AccessLog,
    #[serde(skip_serializing_if = "Option::is_none")]
    certificates_resolvers: Option<BTreeMap<&'static str, Resolver>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Global {
    check_new_version: bool,
    send_anonymous_usage: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EntryPoint {
    address: String,
    transport: Transport,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Transport {
    life_cycle: LifeCycle,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LifeCycle {
    request_accept_grace_timeout: &'static str,
    grace_time_out: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Providers {
    providers_throttle_duration: &'static str,
    file: FileProvider,
}

#[derive(Serialize)]
struct FileProvider {
    directory: String,
    watch: bool,
}

#[derive(Serialize)]
struct Api {
    insecure: bool,
    dashboard: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EntryPointRef {
    entry_point: &'static str,
}

#[derive(Serialize)]
struct Metrics {
    prometheus: Prometheus,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Prometheus {
    entry_point: &'static str,
    add_routers_labels: bool,
    add_services_labels: bool,
}

#[derive(Serialize)]
struct Log {
    level: &'static str,
    format: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AccessLog {
    file_path: String,
    format: &'static str,
    buffering_size: u32,
}

#[derive(Serialize)]
struct Resolver {
    acme: Acme,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Acme {
    email: String,
    storage: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    ca_server: Option<String>,
    tls_challenge: BTreeMap<String, String>,
}

/// Traefik's static configuration (YAML): entry points `web` (and
/// `websecure`), the file provider watching `dynamic_dir`, the API, ping and
/// Prometheus metrics on `127.0.0.1:api_port` only, JSON access log.
pub fn render_static_config(s: &TraefikSettings) -> String {
    let life_cycle = || Transport {
        life_cycle: LifeCycle {
            // On shutdown, keep accepting briefly (a load balancer in front
            // notices), then let in-flight requests finish.
            request_accept_grace_timeout: "0s",
            grace_time_out: "10s",
        },
    };
    let mut entry_points = BTreeMap::new();
    entry_points.insert(
        WEB_ENTRYPOINT,
        EntryPoint {
            address: format!(":{}", s.http_port),
            transport: life_cycle(),
        },
    );
    if let Some(p) = s.https_port {
        entry_points.insert(
            WEBSECURE_ENTRYPOINT,
            EntryPoint {
                address: format!(":{p}"),
                transport: life_cycle(),
            },
        );
    }
    entry_points.insert(
        INTERNAL_ENTRYPOINT,
        EntryPoint {
            address: format!("127.0.0.1:{}", s.api_port),
            transport: life_cycle(),
        },
    );
    let certificates_resolvers = s.acme_email.as_ref().map(|email| {
        let mut m = BTreeMap::new();
        m.insert(
            ACME_RESOLVER,
            Resolver {
                acme: Acme {
                    email: email.clone(),
                    storage: s.acme_storage_path().display().to_string(),
                    ca_server: s.acme_ca_server.clone(),
                    tls_challenge: BTreeMap::new(),
                },
            },
        );
        m
    });
    let config = StaticConfig {
        global: Global {
            check_new_version: false,
            send_anonymous_usage: false,
        },
        entry_points,
        providers: Providers {
            // Default is 2 s: a route change would wait that long to apply.
            providers_throttle_duration: "100ms",
            file: FileProvider {
                directory: s.dynamic_dir.display().to_string(),
                watch: true,
            },
        },
        api: Api {
            insecure: true,
            dashboard: false,
        },
        ping: EntryPointRef {
            entry_point: INTERNAL_ENTRYPOINT,
        },
        metrics: Metrics {
            prometheus: Prometheus {
                entry_point: INTERNAL_ENTRYPOINT,
                add_routers_labels: true,
                add_services_labels: true,
            },
        },
        log: Log {
            level: "INFO",
            format: "json",
        },
        access_log: AccessLog {
            file_path: s.access_log_path().display().to_string(),
            format: "json",
            buffering_size: 0,
        },
        certificates_resolvers,
    };
    to_yaml(&config)
}

// ---- dynamic configuration -------------------------------------------------------------

#[derive(Serialize)]
struct Dynamic {
    http: Http,
}

#[derive(Serialize)]
struct Http {
    routers: BTreeMap<String, Router>,
    services: BTreeMap<String, Service>,
    middlewares: BTreeMap<String, Middleware>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Router {
    rule: String,
    entry_points: Vec<String>,
    service: String,
    middlewares: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls: Option<RouterTls>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RouterTls {
    cert_resolver: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Service {
    load_balancer: LoadBalancer,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LoadBalancer {
    pass_host_header: bool,
    servers: Vec<Server>,
}

#[derive(Serialize)]
struct Server {
    url: String,
}

#[derive(Serialize)]
struct Middleware {
    headers: Headers,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Headers {
    frame_deny: bool,
    content_type_nosniff: bool,
    referrer_policy: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sts_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sts_include_subdomains: Option<bool>,
}

/// Is `key` usable as a file, router and service name?
pub fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 100
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && !key.starts_with(['-', '_'])
}

/// Is `host` a domain name Traefik can match (letters, digits, `-`, `.`)?
pub fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// Is `prefix` a path prefix safe to put into a rule?
pub fn valid_path_prefix(prefix: &str) -> bool {
    prefix.starts_with('/')
        && prefix.len() <= 1024
        && prefix
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'`' | b'"' | b'\\' | b'?' | b'#'))
}

/// Rule text for one route. Inputs are validated by [`crate::Proxy::apply`];
/// characters that could escape the rule's quotes are dropped here as well.
fn rule(route: &Route) -> String {
    let clean = |s: &str| {
        s.chars()
            .filter(|c| !matches!(c, '`' | '"' | '\\') && !c.is_whitespace())
            .collect::<String>()
    };
    let host = clean(&route.host.to_ascii_lowercase());
    match route
        .path_prefix
        .as_deref()
        .map(clean)
        .filter(|p| !p.is_empty() && p != "/")
    {
        Some(p) => format!("Host(`{host}`) && PathPrefix(`{p}`)"),
        None => format!("Host(`{host}`)"),
    }
}

/// Name of the security-headers middleware of an application.
pub fn headers_middleware(key: &str) -> String {
    format!("{key}-headers")
}

/// Router name of the `index`-th route of an application.
pub fn router_name(key: &str, index: usize) -> String {
    format!("{key}-{index}")
}

/// One application's dynamic configuration (YAML): one router per route, one
/// service `<key>` load-balancing over `servers` (Host header passed through),
/// and a security-headers middleware (X-Frame-Options, X-Content-Type-Options,
/// Referrer-Policy; HSTS only with TLS).
///
/// With no servers there is nothing to route to, and the right answer for the
/// application's domains is Traefik's 404 (no router), not a 503 from a router
/// with an empty service: [`crate::Proxy::apply`] removes the file instead of
/// writing this; the rendering is still well-formed (routers and service
/// omitted) for callers that inspect it.
pub fn render_app_config(r: &AppRoutes) -> String {
    let mut routers = BTreeMap::new();
    let mut services = BTreeMap::new();
    let mut middlewares = BTreeMap::new();
    let middleware = headers_middleware(&r.key);
    if !r.servers.is_empty() {
        for (i, route) in r.routes.iter().enumerate() {
            routers.insert(
                router_name(&r.key, i),
                Router {
                    rule: rule(route),
                    entry_points: r.entrypoints.clone(),
                    service: r.key.clone(),
                    middlewares: vec![middleware.clone()],
                    tls: r.tls.then_some(RouterTls {
                        cert_resolver: ACME_RESOLVER,
                    }),
                },
            );
        }
        let mut servers: Vec<String> = r.servers.clone();
        servers.sort();
        servers.dedup();
        services.insert(
            r.key.clone(),
            Service {
                load_balancer: LoadBalancer {
                    pass_host_header: true,
                    servers: servers.into_iter().map(|url| Server { url }).collect(),
                },
            },
        );
    }
    middlewares.insert(
        middleware,
        Middleware {
            headers: Headers {
                frame_deny: true,
                content_type_nosniff: true,
                referrer_policy: "strict-origin-when-cross-origin",
                sts_seconds: r.tls.then_some(31_536_000),
                sts_include_subdomains: r.tls.then_some(true),
            },
        },
    );
    let header = format!(
        "# Written by Hanzo Platform for {}; changes here are overwritten.\n",
        r.key
    );
    header
        + &to_yaml(&Dynamic {
            http: Http {
                routers,
                services,
                middlewares,
            },
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> TraefikSettings {
        TraefikSettings {
            bin: "traefik".into(),
            http_port: 8080,
            https_port: None,
            api_port: 9090,
            dynamic_dir: "/var/lib/hanzo/traefik/dynamic".into(),
            state_dir: "/var/lib/hanzo/traefik".into(),
            acme_email: None,
            acme_ca_server: None,
        }
    }

    #[test]
    fn static_config_plain_http() {
        insta::assert_snapshot!(render_static_config(&settings()));
    }

    #[test]
    fn static_config_with_https_and_acme() {
        let s = TraefikSettings {
            https_port: Some(8443),
            acme_email: Some("ops@example.com".into()),
            acme_ca_server: Some("https://127.0.0.1:14000/dir".into()),
            ..settings()
        };
        insta::assert_snapshot!(render_static_config(&s));
    }

    fn app() -> AppRoutes {
        AppRoutes {
            key: "hanzo-hello".into(),
            routes: vec![
                Route {
                    host: "hello.example.com".into(),
                    path_prefix: None,
                },
                Route {
                    host: "example.com".into(),
                    path_prefix: Some("/hello".into()),
                },
            ],
            servers: vec![
                "http://172.18.0.4:3000".into(),
                "http://172.18.0.3:3000".into(),
            ],
            entrypoints: vec!["web".into()],
            tls: false,
        }
    }

    #[test]
    fn app_config_plain_http() {
        insta::assert_snapshot!(render_app_config(&app()));
    }

    #[test]
    fn app_config_with_tls() {
        let r = AppRoutes {
            entrypoints: vec!["websecure".into()],
            tls: true,
            ..app()
        };
        insta::assert_snapshot!(render_app_config(&r));
    }

    #[test]
    fn app_config_without_servers_has_no_router() {
        let r = AppRoutes {
            servers: vec![],
            ..app()
        };
        let yaml = render_app_config(&r);
        assert!(!yaml.contains("rule:"), "{yaml}");
        assert!(!yaml.contains("loadBalancer"), "{yaml}");
    }

    #[test]
    fn rules_cannot_be_escaped() {
        let r = Route {
            host: "a.com`) || Host(`b.com".into(),
            path_prefix: Some("/x`".into()),
        };
        assert_eq!(rule(&r), "Host(`a.com)||host(b.com`) && PathPrefix(`/x`)");
        assert_eq!(
            rule(&Route {
                host: "A.com".into(),
                path_prefix: Some("/".into())
            }),
            "Host(`a.com`)"
        );
    }

    #[test]
    fn validation() {
        assert!(valid_key("hanzo-hello"));
        assert!(!valid_key("Hanzo"));
        assert!(!valid_key("../x"));
        assert!(!valid_key(""));
        assert!(valid_host("hello.example.com"));
        assert!(valid_host("localhost"));
        assert!(!valid_host("a..b"));
        assert!(!valid_host("a`b"));
        assert!(!valid_host("-a.com"));
        assert!(valid_path_prefix("/api/v1"));
        assert!(!valid_path_prefix("api"));
        assert!(!valid_path_prefix("/a b"));
        assert!(!valid_path_prefix("/a`"));
    }
}
