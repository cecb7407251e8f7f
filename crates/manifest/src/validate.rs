//! Walks the parsed document, checks every rule, fills every default and builds
//! the resolved [`Manifest`]. Problems are collected, never returned early, so
//! one run reports all of them.

use crate::diag::{Sink, did_you_mean};
use crate::domain::parse_domain;
use crate::node::{Kind, Node, Pos};
use crate::types::*;
use crate::units::{parse_cpu, parse_duration, parse_memory};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// Keys of every mapping, in the order of the fields of the raw types in `raw.rs`
/// (a test checks that the JSON Schema has exactly these properties).
pub(crate) const TOP_KEYS: &[&str] = &[
    "name",
    "org",
    "runtime",
    "version",
    "build",
    "deploy",
    "services",
    "env",
    "resources",
];
pub(crate) const BUILD_KEYS: &[&str] = &[
    "dockerfile",
    "context",
    "target",
    "command",
    "output",
    "args",
    "network",
    "timeout",
];
pub(crate) const DEPLOY_KEYS: &[&str] = &[
    "instances",
    "memory",
    "cpu",
    "strategy",
    "max_surge",
    "max_unavailable",
    "startup_timeout",
];
pub(crate) const SERVICE_KEYS: &[&str] = &[
    "type",
    "port",
    "protocol",
    "command",
    "schedule",
    "healthcheck",
    "domains",
];
pub(crate) const HEALTH_KEYS: &[&str] = &["path", "exec", "interval", "timeout", "retries"];
pub(crate) const ENV_KEYS: &[&str] = &[
    "name",
    "value",
    "secret",
    "kms_key",
    "kms_project",
    "kms_env",
];
pub(crate) const RESOURCES_KEYS: &[&str] = &["postgres", "redis"];
pub(crate) const POSTGRES_KEYS: &[&str] = &["version", "storage"];
pub(crate) const REDIS_KEYS: &[&str] = &["version", "maxmemory"];

/// Where each key may be written, for "`memory` belongs under `deploy:`" hints.
const SECTIONS: &[(&str, &[&str])] = &[
    ("the top level", TOP_KEYS),
    ("build:", BUILD_KEYS),
    ("deploy:", DEPLOY_KEYS),
    ("a services entry", SERVICE_KEYS),
    ("healthcheck:", HEALTH_KEYS),
    ("an env entry", ENV_KEYS),
    ("resources:", RESOURCES_KEYS),
];

pub(crate) const DEFAULT_NODE: &str = "20";
pub(crate) const DEFAULT_PYTHON: &str = "3.12";
pub(crate) const DEFAULT_GO: &str = "1.22";
pub(crate) const DEFAULT_RUST: &str = "1.78";

const MIN_MEMORY: u64 = 6 << 20;

/// The fields of one mapping, after unknown and repeated keys were reported.
struct Fields<'n> {
    pos: Pos,
    map: HashMap<&'n str, (&'n Node, &'n Node)>,
}

impl<'n> Fields<'n> {
    /// The value of `key`, unless absent or written as null (`key:` with nothing after it).
    fn get(&self, key: &str) -> Option<&'n Node> {
        self.map.get(key).map(|(_, v)| *v).filter(|v| !v.is_null())
    }

    fn key_pos(&self, key: &str) -> Pos {
        self.map.get(key).map(|(k, _)| k.pos).unwrap_or(self.pos)
    }

    fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }
}

struct Walker<'a> {
    sink: Sink<'a>,
    text: &'a str,
}

pub(crate) fn resolve(root: &Node, sink: Sink<'_>) -> Result<Manifest, crate::Diagnostics> {
    let text = sink.text;
    let mut w = Walker { sink, text };
    let manifest = w.manifest(root);
    if w.sink.items.is_empty() {
        Ok(manifest)
    } else {
        Err(w.sink.finish())
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn quoted_list(items: &[&str]) -> String {
    items
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl<'a> Walker<'a> {
    fn report(&mut self, pos: Pos, message: impl Into<String>, help: impl Into<String>) {
        self.sink.report(pos, message, help);
    }

    /// The text of a scalar as written (`1.10` stays `1.10`).
    fn scalar_text(&self, node: &Node) -> Option<String> {
        let written = node
            .pos
            .source(self.text)
            .map(str::trim)
            .filter(|s| !s.is_empty());
        match &node.kind {
            Kind::Str(s) => Some(s.clone()),
            Kind::Int(i) => Some(written.map(str::to_string).unwrap_or_else(|| i.to_string())),
            Kind::Float(f) => Some(written.map(str::to_string).unwrap_or_else(|| f.to_string())),
            Kind::Bool(b) => Some(written.map(str::to_string).unwrap_or_else(|| b.to_string())),
            _ => None,
        }
    }

    fn type_error(&mut self, node: &Node, path: &str, expected: &str, help: &str) {
        let mut help = help.to_string();
        if help.is_empty()
            && expected.contains("string")
            && !matches!(node.kind, Kind::Seq(_) | Kind::Map(_) | Kind::Null)
            && let Some(t) = self.scalar_text(node)
        {
            help = format!("quote it: \"{t}\"");
        }
        if help.is_empty() {
            help = match &node.kind {
                Kind::Null => format!("give `{path}` a value, or remove it"),
                _ if expected.starts_with("a mapping") => {
                    if path.is_empty() {
                        "write `key: value` settings, starting with `name:` and `org:`".to_string()
                    } else {
                        format!("write `key: value` settings indented under `{path}:`")
                    }
                }
                _ if expected.starts_with("a list") => {
                    format!("write one entry per line under `{path}:`, each starting with `- `")
                }
                _ => format!("write {expected} here"),
            };
        }
        let subject = if path.is_empty() {
            "the manifest".to_string()
        } else {
            format!("`{path}`")
        };
        let shown = match (&node.kind, self.scalar_text(node)) {
            (Kind::Seq(_) | Kind::Map(_) | Kind::Null, _) | (_, None) => {
                node.describe().to_string()
            }
            (_, Some(t)) => format!("{} ({t})", node.describe()),
        };
        self.report(
            node.pos,
            format!("{subject} is {shown}, expected {expected}"),
            help,
        );
    }

    /// Checks that `node` is a mapping, reports unknown and repeated keys, and
    /// returns its fields.
    fn fields<'n>(
        &mut self,
        node: &'n Node,
        path: &str,
        allowed: &[&str],
        what: &str,
    ) -> Option<Fields<'n>> {
        let Kind::Map(entries) = &node.kind else {
            let expected = if what.starts_with("of ") {
                format!("a mapping {what}")
            } else {
                format!("a mapping ({what})")
            };
            self.type_error(node, path, &expected, "");
            return None;
        };
        let mut map: HashMap<&'n str, (&'n Node, &'n Node)> = HashMap::new();
        for (k, v) in entries {
            let Some(key) = k.as_str() else {
                self.report(
                    k.pos,
                    format!(
                        "a key in `{}` is {}, not a name",
                        if path.is_empty() {
                            "the top level"
                        } else {
                            path
                        },
                        k.describe()
                    ),
                    format!("use one of {}", quoted_list(allowed)),
                );
                continue;
            };
            if !allowed.contains(&key) {
                let here = if path.is_empty() {
                    "at the top level".to_string()
                } else {
                    format!("in `{path}`")
                };
                let help = if let Some(s) = did_you_mean(key, allowed.iter().copied()) {
                    format!("did you mean `{s}`?")
                } else if let Some((section, _)) = SECTIONS
                    .iter()
                    .find(|(_, keys)| keys.contains(&key) && !std::ptr::eq(*keys, allowed))
                {
                    format!("`{key}` belongs under {section}")
                } else {
                    format!("the keys allowed here are {}", quoted_list(allowed))
                };
                self.report(k.pos, format!("unknown key `{key}` {here}"), help);
                continue;
            }
            if let Some((first, _)) = map.get(key) {
                let line = first.pos.line;
                self.report(
                    k.pos,
                    format!("`{}` is set twice", join(path, key)),
                    format!("remove one of the two (the other is on line {line})"),
                );
                continue;
            }
            map.insert(key, (k, v));
        }
        Some(Fields { pos: node.pos, map })
    }

    fn string(&mut self, f: &Fields<'_>, key: &str, path: &str) -> Option<String> {
        let node = f.get(key)?;
        match &node.kind {
            Kind::Str(s) if s.trim().is_empty() => {
                self.report(
                    node.pos,
                    format!("`{}` is empty", join(path, key)),
                    format!("give it a value or remove `{key}`"),
                );
                None
            }
            Kind::Str(s) => Some(s.clone()),
            _ => {
                self.type_error(node, &join(path, key), "a string", "");
                None
            }
        }
    }

    /// A string, or a number or boolean taken as written (`version: 1.10` → `"1.10"`).
    fn text_of(&mut self, node: &Node, path: &str) -> Option<String> {
        match &node.kind {
            Kind::Seq(_) | Kind::Map(_) | Kind::Null => {
                self.type_error(node, path, "a string", "");
                None
            }
            _ => self.scalar_text(node),
        }
    }

    fn text(&mut self, f: &Fields<'_>, key: &str, path: &str) -> Option<String> {
        let node = f.get(key)?;
        self.text_of(node, &join(path, key))
    }

    fn bool(&mut self, f: &Fields<'_>, key: &str, path: &str) -> Option<bool> {
        let node = f.get(key)?;
        match node.kind {
            Kind::Bool(b) => Some(b),
            _ => {
                let help = match node.as_str() {
                    Some(s)
                        if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false") =>
                    {
                        format!("remove the quotes: {}", s.to_ascii_lowercase())
                    }
                    _ => "write true or false".to_string(),
                };
                self.type_error(node, &join(path, key), "true or false", &help);
                None
            }
        }
    }

    fn integer(
        &mut self,
        f: &Fields<'_>,
        key: &str,
        path: &str,
        min: i128,
        max: i128,
    ) -> Option<i128> {
        let node = f.get(key)?;
        let p = join(path, key);
        match &node.kind {
            Kind::Int(i) if (min..=max).contains(i) => Some(*i),
            Kind::Int(i) => {
                self.report(
                    node.pos,
                    format!("`{p}` is {i}, outside {min}..={max}"),
                    format!("use a whole number from {min} to {max}"),
                );
                None
            }
            Kind::Str(s) if s.trim().parse::<i128>().is_ok() => {
                self.type_error(
                    node,
                    &p,
                    "a number",
                    &format!("remove the quotes: {}", s.trim()),
                );
                None
            }
            _ => {
                self.type_error(
                    node,
                    &p,
                    "a whole number",
                    &format!("use a whole number from {min} to {max}"),
                );
                None
            }
        }
    }

    fn enumerated<T: Copy>(
        &mut self,
        f: &Fields<'_>,
        key: &str,
        path: &str,
        options: &[(&str, T)],
    ) -> Option<T> {
        let node = f.get(key)?;
        let p = join(path, key);
        let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
        let Some(s) = node.as_str() else {
            self.type_error(node, &p, &format!("one of {}", names.join(" | ")), "");
            return None;
        };
        if let Some((_, v)) = options.iter().find(|(n, _)| *n == s) {
            return Some(*v);
        }
        let help = match did_you_mean(s, names.iter().copied()) {
            Some(m) => format!("did you mean `{m}`? (allowed: {})", names.join(", ")),
            None => format!("use one of {}", quoted_list(&names)),
        };
        self.report(
            node.pos,
            format!("`{p}` is \"{s}\", which is not allowed"),
            help,
        );
        None
    }

    fn duration(
        &mut self,
        f: &Fields<'_>,
        key: &str,
        path: &str,
        min: Duration,
        max: Duration,
    ) -> Option<Duration> {
        let node = f.get(key)?;
        let p = join(path, key);
        let d = match &node.kind {
            Kind::Int(i) if *i >= 0 => Duration::from_secs(u64::try_from(*i).unwrap_or(u64::MAX)),
            Kind::Str(s) => {
                match parse_duration(s) {
                    Ok(d) => d,
                    Err(e) => {
                        self.report(node.pos, format!("`{p}`: {e}"), "write a duration such as 500ms, 30s, 5m or 1h (a bare number is seconds)");
                        return None;
                    }
                }
            }
            _ => {
                self.type_error(
                    node,
                    &p,
                    "a duration",
                    "write a duration such as 500ms, 30s, 5m or 1h (a bare number is seconds)",
                );
                return None;
            }
        };
        if d < min || d > max {
            let (lo, hi) = (
                crate::units::format_duration(min),
                crate::units::format_duration(max),
            );
            self.report(
                node.pos,
                format!(
                    "`{p}` is {}, outside {lo}..{hi}",
                    crate::units::format_duration(d)
                ),
                format!("use a duration from {lo} to {hi}"),
            );
            return None;
        }
        Some(d)
    }

    fn memory(&mut self, f: &Fields<'_>, key: &str, path: &str, min: u64) -> Option<u64> {
        let node = f.get(key)?;
        let p = join(path, key);
        let help =
            "write a size such as 256Mi, 1Gi or 512M (Ki/Mi/Gi are powers of 1024, K/M/G of 1000)";
        let bytes = match &node.kind {
            Kind::Int(i) if *i > 0 => u64::try_from(*i).unwrap_or(u64::MAX),
            Kind::Str(s) => match parse_memory(s) {
                Ok(b) => b,
                Err(e) => {
                    let h = if e.contains("milli") {
                        let n = s.trim().trim_end_matches('m');
                        format!("write {n}Mi (mebibytes) or {n}M (megabytes)")
                    } else {
                        help.to_string()
                    };
                    self.report(node.pos, format!("`{p}`: {e}"), h);
                    return None;
                }
            },
            _ => {
                self.type_error(node, &p, "a size", help);
                return None;
            }
        };
        if bytes < min {
            let m = crate::units::format_memory(min);
            self.report(
                node.pos,
                format!("`{p}` is {bytes} bytes, below the minimum of {m}"),
                format!("use at least {m}"),
            );
            return None;
        }
        Some(bytes)
    }

    // ---- sections ------------------------------------------------------------------

    fn manifest(&mut self, root: &Node) -> Manifest {
        let mut m = Manifest {
            name: String::new(),
            org: String::new(),
            runtime: Runtime::Auto,
            version: None,
            build: default_build(),
            deploy: default_deploy(),
            services: Vec::new(),
            env: Vec::new(),
            resources: Resources::default(),
        };
        if root.is_null() {
            self.report(
                root.pos,
                "the manifest is empty",
                "write at least `name:` and `org:` (see `hanzo manifest schema`)",
            );
            return m;
        }
        let Some(f) = self.fields(root, "", TOP_KEYS, "of settings") else {
            return m;
        };
        for (key, what) in [("name", "application name"), ("org", "organisation name")] {
            match f.get(key) {
                None => self.report(
                    f.key_pos(key),
                    format!("`{key}` is missing"),
                    format!(
                        "add `{key}:` with the {what} (a DNS label such as {})",
                        if key == "name" {
                            "my-service"
                        } else {
                            "my-org"
                        }
                    ),
                ),
                Some(node) => {
                    if let Some(s) = self.text_of(node, key) {
                        if let Err(e) = hanzo_core::validate_name(what, &s) {
                            let text = e.to_string();
                            let (msg, help) = text.split_once(" — ").unwrap_or((text.as_str(), ""));
                            self.report(node.pos, msg.to_string(), help.to_string());
                        }
                        if key == "name" { m.name = s } else { m.org = s }
                    }
                }
            }
        }
        if let Some(node) = f.get("runtime")
            && let Some(rt) = self.runtime(node)
        {
            m.runtime = rt;
        }
        m.version = self.text(&f, "version", "");
        if let Some(node) = f.get("build") {
            self.build(node, &mut m.build);
        }
        if let Some(node) = f.get("deploy") {
            self.deploy(node, &mut m.deploy);
        }
        match f.get("services") {
            None => m.services = vec![default_web_service()],
            Some(node) => m.services = self.services(node),
        }
        if let Some(node) = f.get("env") {
            m.env = self.env(node, &m.name);
        }
        if let Some(node) = f.get("resources") {
            m.resources = self.resources(node);
        }
        m
    }

    fn runtime(&mut self, node: &Node) -> Option<Runtime> {
        let Some(s) = node.as_str() else {
            self.type_error(
                node,
                "runtime",
                "a string such as auto, docker or node-20",
                "",
            );
            return None;
        };
        match parse_runtime(s) {
            Ok(rt) => Some(rt),
            Err((msg, help)) => {
                self.report(node.pos, msg, help);
                None
            }
        }
    }

    fn rel_path(&mut self, f: &Fields<'_>, key: &str, path: &str) -> Option<String> {
        let s = self.string(f, key, path)?;
        let p = join(path, key);
        let pos = f.get(key).map(|n| n.pos).unwrap_or(f.pos);
        if s.starts_with('/') || s.contains('\\') && s.get(1..2) == Some(":") {
            self.report(
                pos,
                format!("`{p}` is the absolute path {s:?}"),
                "write a path relative to the repository root",
            );
            return None;
        }
        if s.split(['/', '\\']).any(|c| c == "..") {
            self.report(
                pos,
                format!("`{p}` ({s:?}) leaves the repository with '..'"),
                "write a path inside the repository",
            );
            return None;
        }
        if s.contains('\0') {
            self.report(
                pos,
                format!("`{p}` contains a NUL character"),
                "write a plain path",
            );
            return None;
        }
        Some(s)
    }

    fn build(&mut self, node: &Node, b: &mut BuildConfig) {
        let path = "build";
        let Some(f) = self.fields(node, path, BUILD_KEYS, "the build settings") else {
            return;
        };
        if let Some(s) = self.rel_path(&f, "dockerfile", path) {
            b.dockerfile = s;
        }
        if let Some(s) = self.rel_path(&f, "context", path) {
            b.context = s;
        }
        b.target = self.string(&f, "target", path);
        b.command = self.string(&f, "command", path);
        b.output = self.rel_path(&f, "output", path);
        if let Some(args) = f.get("args") {
            b.args = self.build_args(args);
        }
        if let Some(n) = self.enumerated(
            &f,
            "network",
            path,
            &[
                ("default", BuildNetwork::Default),
                ("none", BuildNetwork::None),
            ],
        ) {
            b.network = n;
        }
        if let Some(t) = self.duration(
            &f,
            "timeout",
            path,
            Duration::from_secs(1),
            Duration::from_secs(24 * 3600),
        ) {
            b.timeout = t;
        }
    }

    fn build_args(&mut self, node: &Node) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let Kind::Map(entries) = &node.kind else {
            self.type_error(node, "build.args", "a mapping of NAME: value", "");
            return out;
        };
        for (k, v) in entries {
            let Some(name) = self.text_of(k, "build.args key") else {
                continue;
            };
            if !is_env_name(&name) {
                self.report(
                    k.pos,
                    format!("build argument name {name:?} is not valid"),
                    "use letters, digits and '_', not starting with a digit",
                );
                continue;
            }
            if out.contains_key(&name) {
                self.report(
                    k.pos,
                    format!("build argument `{name}` is set twice"),
                    "remove one of the two",
                );
                continue;
            }
            if v.is_null() {
                self.report(
                    v.pos,
                    format!("build argument `{name}` has no value"),
                    "give it a value, or remove it",
                );
                continue;
            }
            if let Some(val) = self.text_of(v, &format!("build.args.{name}")) {
                out.insert(name, val);
            }
        }
        out
    }

    fn deploy(&mut self, node: &Node, d: &mut DeployConfig) {
        let path = "deploy";
        let Some(f) = self.fields(node, path, DEPLOY_KEYS, "the deploy settings") else {
            return;
        };
        if let Some(i) = self.integer(&f, "instances", path, 1, 1000) {
            d.instances = i as u32;
        }
        if let Some(m) = self.memory(&f, "memory", path, MIN_MEMORY) {
            d.memory_bytes = m;
        }
        if let Some(node) = f.get("cpu") {
            let help = "write CPUs such as \"0.5\" or 2, or milli-CPUs such as 500m";
            if let Some(t) = self.text_of(node, "deploy.cpu") {
                match parse_cpu(&t) {
                    Ok(c) if c >= 10 => d.cpu_millis = c,
                    Ok(_) => self.report(
                        node.pos,
                        format!("`deploy.cpu` is {t}, below the minimum of 0.01"),
                        "use at least 0.01 (10m)",
                    ),
                    Err(e) => self.report(node.pos, format!("`deploy.cpu`: {e}"), help),
                }
            }
        }
        if let Some(s) = self.enumerated(
            &f,
            "strategy",
            path,
            &[
                ("rolling", Strategy::Rolling),
                ("recreate", Strategy::Recreate),
            ],
        ) {
            d.strategy = s;
        }
        if let Some(v) = self.integer(&f, "max_surge", path, 0, 1000) {
            d.max_surge = v as u32;
        }
        if let Some(v) = self.integer(&f, "max_unavailable", path, 0, 1000) {
            d.max_unavailable = v as u32;
        }
        if d.strategy == Strategy::Rolling
            && d.max_surge == 0
            && d.max_unavailable == 0
            && (f.has("max_surge") || f.has("max_unavailable"))
        {
            let pos = f
                .get("max_surge")
                .or(f.get("max_unavailable"))
                .map(|n| n.pos)
                .unwrap_or(f.pos);
            self.report(pos, "`deploy.max_surge` and `deploy.max_unavailable` are both 0, so a rolling update cannot start", "set max_surge: 1 (the default) or allow max_unavailable: 1");
        }
        if let Some(t) = self.duration(
            &f,
            "startup_timeout",
            path,
            Duration::from_secs(1),
            Duration::from_secs(3600),
        ) {
            d.startup_timeout = t;
        }
    }

    fn services(&mut self, node: &Node) -> Vec<Service> {
        let Kind::Seq(items) = &node.kind else {
            self.type_error(
                node,
                "services",
                "a list of services (entries starting with `- type: web`)",
                "",
            );
            return Vec::new();
        };
        if items.is_empty() {
            self.report(node.pos, "`services` is an empty list", "list at least one service, or remove `services` to get one web service on port 3000");
            return Vec::new();
        }
        let mut out = Vec::new();
        let mut seen_domains: HashMap<(String, Option<String>), usize> = HashMap::new();
        for (i, item) in items.iter().enumerate() {
            if let Some(s) = self.service(item, i, &mut seen_domains) {
                out.push(s);
            }
        }
        out
    }

    fn service(
        &mut self,
        node: &Node,
        i: usize,
        seen: &mut HashMap<(String, Option<String>), usize>,
    ) -> Option<Service> {
        let path = format!("services[{i}]");
        let f = self.fields(node, &path, SERVICE_KEYS, "a service")?;
        let kinds = [
            ("web", ServiceKind::Web),
            ("worker", ServiceKind::Worker),
            ("cron", ServiceKind::Cron),
        ];
        let kind = self.enumerated(&f, "type", &path, &kinds);
        if !f.has("type") {
            self.report(
                f.pos,
                format!("`{path}` has no `type`"),
                "add `type: web`, `type: worker` or `type: cron`",
            );
        }
        let port = self.integer(&f, "port", &path, 1, 65535).map(|p| p as u16);
        let protocol_given = f.has("protocol");
        let protocol = self
            .enumerated(
                &f,
                "protocol",
                &path,
                &[
                    ("http", Protocol::Http),
                    ("grpc", Protocol::Grpc),
                    ("tcp", Protocol::Tcp),
                ],
            )
            .unwrap_or(Protocol::Http);
        let command = self.string(&f, "command", &path);
        let schedule = self.schedule(&f, &path);
        let mut domains = Vec::new();
        if let Some(dn) = f.get("domains") {
            domains = self.domains(dn, &path, seen);
        }
        let hc_node = f.get("healthcheck");
        let mut health = self.healthcheck(hc_node, &path);

        let kind_name = match kind {
            Some(ServiceKind::Web) => "web",
            Some(ServiceKind::Worker) => "worker",
            Some(ServiceKind::Cron) => "cron",
            None => "",
        };
        match kind {
            Some(ServiceKind::Web) => {
                if port.is_none() && !f.has("port") {
                    self.report(
                        f.key_pos("type"),
                        format!("`{path}` is a web service without a port"),
                        "add `port:` with the port your server listens on, e.g. port: 3000",
                    );
                }
                if f.has("schedule") {
                    self.report(
                        f.key_pos("schedule"),
                        format!("`{path}.schedule` applies to cron services only"),
                        "remove `schedule`, or make it `type: cron`",
                    );
                }
                if health.path.is_none() && health.exec.is_none() && protocol == Protocol::Http {
                    health.path = Some("/".to_string());
                }
            }
            Some(k @ (ServiceKind::Worker | ServiceKind::Cron)) => {
                let a = if k == ServiceKind::Worker {
                    "a worker"
                } else {
                    "a cron job"
                };
                if f.has("port") {
                    self.report(
                        f.key_pos("port"),
                        format!("`{path}.port`: {a} has no port"),
                        "remove `port`, or make it `type: web`",
                    );
                }
                if f.has("domains") {
                    self.report(
                        f.key_pos("domains"),
                        format!("`{path}.domains`: {a} cannot have a domain"),
                        "remove `domains`, or make it `type: web` with a port",
                    );
                }
                if protocol_given {
                    self.report(
                        f.key_pos("protocol"),
                        format!("`{path}.protocol`: {a} serves no traffic"),
                        "remove `protocol`, or make it `type: web`",
                    );
                }
                if k == ServiceKind::Worker && f.has("schedule") {
                    self.report(
                        f.key_pos("schedule"),
                        format!("`{path}.schedule` applies to cron services only"),
                        "remove `schedule`, or make it `type: cron`",
                    );
                }
                if k == ServiceKind::Cron && !f.has("schedule") {
                    self.report(
                        f.key_pos("type"),
                        format!("`{path}` is a cron service without a schedule"),
                        "add `schedule:` in 5-field cron syntax, e.g. schedule: \"0 */6 * * *\"",
                    );
                }
                if let Some(h) = hc_node {
                    if k == ServiceKind::Cron {
                        self.report(
                            f.key_pos("healthcheck"),
                            format!("`{path}.healthcheck`: a cron job is not health-checked"),
                            "remove `healthcheck`",
                        );
                    } else if health.path.is_some() {
                        let pos = field_pos(h, "path").unwrap_or(h.pos);
                        self.report(
                            pos,
                            format!(
                                "`{path}.healthcheck.path`: {a} has no port to probe over HTTP"
                            ),
                            "use `exec:` with a command that exits 0 when healthy",
                        );
                    }
                }
            }
            None => {}
        }
        let _ = kind_name;
        Some(Service {
            kind: kind?,
            port,
            protocol,
            command,
            schedule,
            healthcheck: health,
            domains,
        })
    }

    fn schedule(&mut self, f: &Fields<'_>, path: &str) -> Option<String> {
        let node = f.get("schedule")?;
        let s = self.string(f, "schedule", path)?;
        let p = join(path, "schedule");
        let help =
            "write 5 fields: minute hour day-of-month month day-of-week, e.g. \"0 */6 * * *\"";
        let fields = s.split_whitespace().count();
        if !s.trim_start().starts_with('@') && fields != 5 {
            self.report(
                node.pos,
                format!("`{p}` \"{s}\" has {fields} fields, not 5"),
                help,
            );
            return None;
        }
        let parser = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Disallowed)
            .year(croner::parser::Year::Disallowed)
            .build();
        match parser.parse(&s) {
            Ok(_) => Some(s.split_whitespace().collect::<Vec<_>>().join(" ")),
            Err(e) => {
                self.report(
                    node.pos,
                    format!("`{p}` \"{s}\" is not a valid cron expression ({e})"),
                    help,
                );
                None
            }
        }
    }

    fn domains(
        &mut self,
        node: &Node,
        path: &str,
        seen: &mut HashMap<(String, Option<String>), usize>,
    ) -> Vec<Domain> {
        let p = join(path, "domains");
        let items: Vec<&Node> = match &node.kind {
            Kind::Seq(items) => items.iter().collect(),
            Kind::Str(_) => {
                let s = node.as_str().unwrap_or_default();
                let one = s
                    .split([',', ' '])
                    .find(|x| !x.is_empty())
                    .unwrap_or("app.example.com");
                self.type_error(
                    node,
                    &p,
                    "a list of domains",
                    &format!("write one domain per list entry:\n  domains:\n    - {one}"),
                );
                return Vec::new();
            }
            _ => {
                self.type_error(node, &p, "a list of domains", "");
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for (j, item) in items.into_iter().enumerate() {
            let Some(s) = item.as_str() else {
                self.type_error(item, &format!("{p}[{j}]"), "a domain (a string)", "");
                continue;
            };
            match parse_domain(s) {
                Ok(d) => {
                    let key = (d.host.clone(), d.path.clone());
                    if let Some(line) = seen.get(&key) {
                        self.report(
                            item.pos,
                            format!("domain \"{s}\" is listed twice"),
                            format!("remove one of the two (the other is on line {line})"),
                        );
                        continue;
                    }
                    seen.insert(key, item.pos.line);
                    out.push(d);
                }
                Err(e) => self.report(item.pos, format!("`{p}[{j}]`: {}", e.message), e.help),
            }
        }
        out
    }

    fn healthcheck(&mut self, node: Option<&Node>, path: &str) -> HealthCheck {
        let mut h = default_health();
        let Some(node) = node else { return h };
        let path = join(path, "healthcheck");
        let Some(f) = self.fields(node, &path, HEALTH_KEYS, "the health check") else {
            return h;
        };
        if let Some(p) = self.string(&f, "path", &path) {
            if !p.starts_with('/') || p.chars().any(|c| c.is_whitespace() || c.is_control()) {
                let pos = f.get("path").map(|n| n.pos).unwrap_or(f.pos);
                self.report(
                    pos,
                    format!("`{path}.path` {p:?} is not an absolute URL path"),
                    format!(
                        "start it with '/', e.g. /{}",
                        p.trim_start_matches('/').trim()
                    ),
                );
            } else {
                h.path = Some(p);
            }
        }
        if let Some(e) = f.get("exec") {
            match &e.kind {
                Kind::Seq(items) if !items.is_empty() => {
                    let mut argv = Vec::new();
                    for (j, it) in items.iter().enumerate() {
                        match it.as_str() {
                            Some(a) => argv.push(a.to_string()),
                            None => {
                                self.type_error(it, &format!("{path}.exec[{j}]"), "a string", "")
                            }
                        }
                    }
                    if argv.len() == items.len() {
                        h.exec = Some(argv);
                    }
                }
                Kind::Seq(_) => self.report(
                    e.pos,
                    format!("`{path}.exec` is an empty list"),
                    "give the command and its arguments, e.g. [\"node\", \"healthcheck.js\"]",
                ),
                Kind::Str(s) => {
                    let argv = s
                        .split_whitespace()
                        .map(|a| format!("\"{a}\""))
                        .collect::<Vec<_>>()
                        .join(", ");
                    self.type_error(
                        e,
                        &format!("{path}.exec"),
                        "a list",
                        &format!("write the command as a list: [{argv}]"),
                    );
                }
                _ => self.type_error(e, &format!("{path}.exec"), "a list of strings", ""),
            }
        }
        if f.has("path") && f.has("exec") {
            self.report(
                f.key_pos("exec"),
                format!("`{path}` has both `path` and `exec`"),
                "keep one: `path` for an HTTP check, `exec` for a command",
            );
            h.exec = None;
        }
        if let Some(d) = self.duration(
            &f,
            "interval",
            &path,
            Duration::from_secs(1),
            Duration::from_secs(3600),
        ) {
            h.interval = d;
        }
        if let Some(d) = self.duration(
            &f,
            "timeout",
            &path,
            Duration::from_millis(100),
            Duration::from_secs(600),
        ) {
            h.timeout = d;
        }
        if let Some(r) = self.integer(&f, "retries", &path, 1, 100) {
            h.retries = r as u32;
        }
        if h.timeout > h.interval && (f.has("timeout") || f.has("interval")) {
            let pos = f
                .get("timeout")
                .or(f.get("interval"))
                .map(|n| n.pos)
                .unwrap_or(f.pos);
            let (t, i) = (
                crate::units::format_duration(h.timeout),
                crate::units::format_duration(h.interval),
            );
            self.report(
                pos,
                format!("`{path}.timeout` ({t}) is longer than the interval ({i})"),
                "make the timeout shorter than the interval between checks",
            );
        }
        h
    }

    fn env(&mut self, node: &Node, app: &str) -> Vec<EnvEntry> {
        let Kind::Seq(items) = &node.kind else {
            let help = if matches!(node.kind, Kind::Map(_)) {
                "write a list of entries: `- name: NODE_ENV` with `value: production` on the next line"
            } else {
                ""
            };
            self.type_error(node, "env", "a list of variables", help);
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (i, item) in items.iter().enumerate() {
            let path = format!("env[{i}]");
            let Some(f) = self.fields(item, &path, ENV_KEYS, "an environment variable") else {
                continue;
            };
            let name = match f.get("name") {
                None => {
                    self.report(
                        f.pos,
                        format!("`{path}` has no `name`"),
                        "add `name:` with the variable name, e.g. name: DATABASE_URL",
                    );
                    None
                }
                Some(n) => match self.text_of(n, &format!("{path}.name")) {
                    Some(s) if is_env_name(&s) => {
                        if let Some(line) = seen.get(&s) {
                            self.report(
                                n.pos,
                                format!("environment variable `{s}` is defined twice"),
                                format!("remove one of the two (the other is on line {line})"),
                            );
                        } else {
                            seen.insert(s.clone(), n.pos.line);
                        }
                        Some(s)
                    }
                    Some(s) => {
                        let mut fixed: String = s
                            .chars()
                            .map(|c| {
                                if c.is_ascii_alphanumeric() {
                                    c.to_ascii_uppercase()
                                } else {
                                    '_'
                                }
                            })
                            .collect();
                        if fixed.starts_with(|c: char| c.is_ascii_digit()) || fixed.is_empty() {
                            fixed.insert(0, '_');
                        }
                        self.report(n.pos, format!("environment variable name {s:?} is not valid"), format!("use letters, digits and '_', not starting with a digit, e.g. {fixed}"));
                        None
                    }
                    None => None,
                },
            };
            let value = self.text(&f, "value", &path);
            let secret = self.bool(&f, "secret", &path).unwrap_or(false);
            let kms_key = self.string(&f, "kms_key", &path);
            let kms_project = self.string(&f, "kms_project", &path);
            let kms_env = self.string(&f, "kms_env", &path);
            let shown = name.clone().unwrap_or_else(|| path.clone());
            if secret {
                if !f.has("kms_key") {
                    self.report(
                        f.key_pos("secret"),
                        format!("secret `{shown}` has no `kms_key`"),
                        "add `kms_key:` with the name of the secret in KMS",
                    );
                }
                if f.has("value") {
                    self.report(
                        f.key_pos("value"),
                        format!("secret `{shown}` also has a plaintext `value`"),
                        "remove `value`; the value comes from KMS at deploy time",
                    );
                }
            } else {
                for k in ["kms_key", "kms_project", "kms_env"] {
                    if f.has(k) {
                        self.report(
                            f.key_pos(k),
                            format!("`{path}.{k}` is set but `{shown}` is not a secret"),
                            "add `secret: true`, or remove the kms_ settings",
                        );
                    }
                }
                if !f.map.contains_key("value")
                    && !["kms_key", "kms_project", "kms_env"]
                        .iter()
                        .any(|k| f.has(k))
                {
                    self.report(
                        f.key_pos("name"),
                        format!("environment variable `{shown}` has no value"),
                        "add `value:`, or `secret: true` with `kms_key:` to read it from KMS",
                    );
                }
            }
            if let Some(name) = name {
                let value = if secret {
                    None
                } else {
                    Some(value.unwrap_or_default())
                };
                let kms_project = if secret {
                    kms_project.or_else(|| Some(app.to_string()))
                } else {
                    None
                };
                out.push(EnvEntry {
                    name,
                    value,
                    secret,
                    kms_key,
                    kms_project,
                    kms_env,
                });
            }
        }
        out
    }

    fn resources(&mut self, node: &Node) -> Resources {
        let mut r = Resources::default();
        let Some(f) = self.fields(node, "resources", RESOURCES_KEYS, "managed resources") else {
            return r;
        };
        if let Some(pg) = f.get("postgres") {
            let path = "resources.postgres";
            if let Some(pf) = self.fields(pg, path, POSTGRES_KEYS, "the PostgreSQL settings") {
                let version = self.version(&pf, path).unwrap_or_else(|| "16".to_string());
                let storage_bytes = self
                    .memory(&pf, "storage", path, 1 << 20)
                    .unwrap_or(1 << 30);
                r.postgres = Some(PostgresResource {
                    version,
                    storage_bytes,
                });
            }
        }
        if let Some(rd) = f.get("redis") {
            let path = "resources.redis";
            if let Some(rf) = self.fields(rd, path, REDIS_KEYS, "the Redis settings") {
                let version = self.version(&rf, path).unwrap_or_else(|| "7".to_string());
                let maxmemory_bytes = self
                    .memory(&rf, "maxmemory", path, 1 << 20)
                    .unwrap_or(256 << 20);
                r.redis = Some(RedisResource {
                    version,
                    maxmemory_bytes,
                });
            }
        }
        r
    }

    fn version(&mut self, f: &Fields<'_>, path: &str) -> Option<String> {
        let v = self.text(f, "version", path)?;
        if is_version(&v) {
            Some(v)
        } else {
            let pos = f.get("version").map(|n| n.pos).unwrap_or(f.pos);
            self.report(
                pos,
                format!("`{path}.version` {v:?} is not a version number"),
                "write a version such as \"16\"",
            );
            None
        }
    }
}

fn field_pos(node: &Node, key: &str) -> Option<Pos> {
    match &node.kind {
        Kind::Map(entries) => entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(k, _)| k.pos),
        _ => None,
    }
}

pub(crate) fn is_env_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_version(s: &str) -> bool {
    !s.is_empty()
        && s.split('.')
            .all(|p| !p.is_empty() && p.len() <= 9 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// `auto`, `docker`, `node-20`, `python-3.12`, … (a bare family takes its default version).
pub(crate) fn parse_runtime(s: &str) -> Result<Runtime, (String, String)> {
    const FAMILIES: &[&str] = &["auto", "docker", "node", "python", "go", "rust"];
    let examples = "auto, docker, node-20, node-22, python-3.12, go-1.22 or rust-1.78";
    let t = s.trim();
    match t {
        "auto" => return Ok(Runtime::Auto),
        "docker" => return Ok(Runtime::Docker),
        _ => {}
    }
    let (family, version) = match t.split_once('-') {
        Some((f, v)) => (f, Some(v)),
        None => (t, None),
    };
    let default = match family {
        "node" => DEFAULT_NODE,
        "python" => DEFAULT_PYTHON,
        "go" => DEFAULT_GO,
        "rust" => DEFAULT_RUST,
        _ => {
            let alias = match family.to_ascii_lowercase().as_str() {
                "nodejs" | "javascript" | "js" | "typescript" | "ts" | "npm" => Some("node"),
                "python3" | "py" | "py3" => Some("python"),
                "golang" => Some("go"),
                "cargo" | "rs" => Some("rust"),
                "dockerfile" | "container" => Some("docker"),
                _ => None,
            };
            let suggestion = alias.or_else(|| did_you_mean(family, FAMILIES.iter().copied()));
            let rest = version.map(|v| format!("-{v}")).unwrap_or_default();
            let help = match suggestion {
                Some(f @ ("docker" | "auto")) => {
                    format!("did you mean `{f}`? (use one of {examples})")
                }
                Some(f) => format!("did you mean `{f}{rest}`? (use one of {examples})"),
                None => format!("use one of {examples}"),
            };
            return Err((format!("`runtime` \"{t}\" is not a known runtime"), help));
        }
    };
    let version = match version {
        None => default.to_string(),
        Some(v) if is_version(v) => v.to_string(),
        Some(v) => {
            return Err((
                format!("`runtime` \"{t}\" has the version {v:?}, which is not a version number"),
                format!("write {family}-<version>, e.g. {family}-{default}"),
            ));
        }
    };
    Ok(match family {
        "node" => Runtime::Node { version },
        "python" => Runtime::Python { version },
        "go" => Runtime::Go { version },
        _ => Runtime::Rust { version },
    })
}

pub(crate) fn default_build() -> BuildConfig {
    BuildConfig {
        dockerfile: "Dockerfile".to_string(),
        context: ".".to_string(),
        target: None,
        command: None,
        output: None,
        args: BTreeMap::new(),
        network: BuildNetwork::Default,
        timeout: Duration::from_secs(15 * 60),
    }
}

pub(crate) fn default_deploy() -> DeployConfig {
    DeployConfig {
        instances: 1,
        memory_bytes: 256 << 20,
        cpu_millis: 250,
        strategy: Strategy::Rolling,
        max_surge: 1,
        max_unavailable: 0,
        startup_timeout: Duration::from_secs(120),
    }
}

pub(crate) fn default_health() -> HealthCheck {
    HealthCheck {
        path: None,
        exec: None,
        interval: Duration::from_secs(30),
        timeout: Duration::from_secs(5),
        retries: 3,
    }
}

pub(crate) fn default_web_service() -> Service {
    Service {
        kind: ServiceKind::Web,
        port: Some(3000),
        protocol: Protocol::Http,
        command: None,
        schedule: None,
        healthcheck: HealthCheck {
            path: Some("/".to_string()),
            ..default_health()
        },
        domains: Vec::new(),
    }
}
