//! The shape of `hanzo.yaml` as an author writes it.
//!
//! These types are the single description of the input: [`crate::schema`] is
//! generated from them, validation checks keys against the same field lists
//! (a test keeps the two equal), and [`crate::explain`] renders a resolved
//! manifest back through them, every default written out.

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Serialize;
use std::collections::BTreeMap;

/// `hanzo.yaml`: how an application is built, run, scaled and routed.
/// Placed at the repository root.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields, title = "hanzo.yaml")]
pub struct ManifestFile {
    /// Application name, unique within the organisation: a DNS label (lowercase
    /// letters, digits and '-', starting with a letter, at most 63 characters).
    #[schemars(schema_with = "dns_label")]
    pub name: String,
    /// Organisation that owns the application: a DNS label.
    #[schemars(schema_with = "dns_label")]
    pub org: String,
    /// How the application is built: `auto` (default: detected from the repository,
    /// Dockerfile first), `docker`, or `<family>-<version>` for node, python, go and rust
    /// (spec versions: node-20, node-22, python-3.12, go-1.22, rust-1.78; others in the
    /// same form are accepted).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(default, schema_with = "runtime_schema")]
    pub runtime: Option<String>,
    /// Informational version; not used for deployment decisions.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(default, schema_with = "text")]
    pub version: Option<String>,
    /// How the image is built.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build: Option<BuildFile>,
    /// How instances are sized, scaled and rolled out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deploy: Option<DeployFile>,
    /// The processes of the application. When omitted, the application is one `web`
    /// service on port 3000 with an HTTP health check on `/`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1), extend("default" = [{"type": "web", "port": 3000, "healthcheck": {"path": "/"}}]))]
    pub services: Option<Vec<ServiceFile>>,
    /// Environment variables: plaintext values, or secrets resolved from KMS at deploy time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<EnvFile>>,
    /// Managed backing services.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourcesFile>,
}

/// `build:`
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct BuildFile {
    /// Path of the Dockerfile, relative to the repository root (default `Dockerfile`).
    /// Used when the runtime is docker.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(default, schema_with = "rel_path", extend("default" = "Dockerfile"))]
    pub dockerfile: Option<String>,
    /// Docker build context, relative to the repository root (default `.`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(default, schema_with = "rel_path", extend("default" = "."))]
    pub context: Option<String>,
    /// Stage of a multi-stage Dockerfile to build.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Build command for non-Docker runtimes, e.g. `npm run build`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Build output directory (static sites), relative to the repository root.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(default, schema_with = "rel_path")]
    pub output: Option<String>,
    /// Build arguments. Never secrets: use `env` with `secret: true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(default, schema_with = "build_args")]
    pub args: Option<BTreeMap<String, String>>,
    /// Network access during the build: `default` (may fetch dependencies) or `none` (hermetic).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "default"))]
    pub network: Option<NetworkFile>,
    /// Build timeout (default `15m`), e.g. `30m` or `1h`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(default, schema_with = "duration", extend("default" = "15m"))]
    pub timeout: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NetworkFile {
    Default,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum StrategyFile {
    Rolling,
    Recreate,
}

/// `deploy:`
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct DeployFile {
    /// Number of instances (default 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000), extend("default" = 1))]
    pub instances: Option<u32>,
    /// Memory limit per instance (default `256Mi`): a number of bytes or a number with
    /// Ki/Mi/Gi/Ti (powers of 1024), K/M/G/T (powers of 1000) or KB/MB/GB (powers of 1024).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(default, schema_with = "memory", extend("default" = "256Mi"))]
    pub memory: Option<String>,
    /// CPU limit per instance (default `0.25`): CPUs such as `"0.5"` or `2`, or milli-CPUs such as `500m`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(default, schema_with = "cpu", extend("default" = "0.25"))]
    pub cpu: Option<String>,
    /// `rolling` (default) or `recreate`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "rolling"))]
    pub strategy: Option<StrategyFile>,
    /// Extra instances during a rolling update (default 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 1000), extend("default" = 1))]
    pub max_surge: Option<u32>,
    /// Instances that may be down during a rolling update (default 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 1000), extend("default" = 0))]
    pub max_unavailable: Option<u32>,
    /// How long a new instance may take to pass its health check (default 120 seconds):
    /// seconds as a number, or a duration such as `2m`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(default, schema_with = "duration", extend("default" = 120))]
    pub startup_timeout: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ServiceKindFile {
    Web,
    Worker,
    Cron,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProtocolFile {
    Http,
    Grpc,
    Tcp,
}

/// One entry of `services:`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ServiceFile {
    /// `web` (serves traffic on `port`), `worker` (background process, no port or domain)
    /// or `cron` (runs `command` on `schedule`, no port or domain).
    #[serde(rename = "type")]
    pub kind: ServiceKindFile,
    /// Container port (required for `web`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<u16>,
    /// `http` (default), `grpc` or `tcp`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "http"))]
    pub protocol: Option<ProtocolFile>,
    /// Command overriding the image's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Cron schedule in standard 5-field syntax (`cron` services only), e.g. `"0 */6 * * *"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// Health check. Web services default to an HTTP check of `/` (http protocol) or a
    /// TCP connect (grpc, tcp); workers default to the process running.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthCheckFile>,
    /// Domains routed to a web service, one per entry: a host (internationalised names
    /// are converted to punycode; `*.example.com` for a wildcard) and an optional path prefix,
    /// e.g. `api.hanzo.ai/v2`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(default, schema_with = "domains")]
    pub domains: Option<Vec<String>>,
}

/// `healthcheck:`: either `path` (HTTP) or `exec` (a command in the instance), not both.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct HealthCheckFile {
    /// HTTP path to probe, starting with `/` (default `/` for http web services).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^/"))]
    pub path: Option<String>,
    /// Command run inside the instance; healthy when it exits 0, e.g. `["node", "healthcheck.js"]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub exec: Option<Vec<String>>,
    /// Time between checks (default `30s`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(default, schema_with = "duration", extend("default" = "30s"))]
    pub interval: Option<String>,
    /// Per-check timeout (default `5s`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(default, schema_with = "duration", extend("default" = "5s"))]
    pub timeout: Option<String>,
    /// Consecutive failures before the instance is unhealthy (default 3).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100), extend("default" = 3))]
    pub retries: Option<u32>,
}

/// One entry of `env:`: a plaintext `value`, or `secret: true` with a `kms_key`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct EnvFile {
    /// Variable name: letters, digits and '_', not starting with a digit.
    #[schemars(schema_with = "env_name")]
    pub name: String,
    /// Plaintext value (stored in the platform database). Not allowed on secrets.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(default, schema_with = "text")]
    pub value: Option<String>,
    /// Resolve the value from KMS at deploy time (requires `kms_key`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = false))]
    pub secret: Option<bool>,
    /// KMS secret key name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kms_key: Option<String>,
    /// KMS project (default: the application name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kms_project: Option<String>,
    /// KMS environment (default: the deploy target's environment).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kms_env: Option<String>,
}

/// `resources:`
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ResourcesFile {
    /// Managed PostgreSQL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postgres: Option<PostgresFile>,
    /// Managed Redis.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis: Option<RedisFile>,
}

/// `resources.postgres:`
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct PostgresFile {
    /// PostgreSQL major version (default `"16"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(default, schema_with = "text", extend("default" = "16"))]
    pub version: Option<String>,
    /// Storage size (default `1Gi`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(default, schema_with = "memory", extend("default" = "1Gi"))]
    pub storage: Option<String>,
}

/// `resources.redis:`
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RedisFile {
    /// Redis major version (default `"7"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(default, schema_with = "text", extend("default" = "7"))]
    pub version: Option<String>,
    /// Memory limit (default `256mb`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(default, schema_with = "memory", extend("default" = "256mb"))]
    pub maxmemory: Option<String>,
}

// ---- schemas of the scalar forms -------------------------------------------------

/// Pattern of a memory size (a string; plain integers are bytes).
pub(crate) const MEMORY_PATTERN: &str =
    r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|K|k|M|G|T|[kKmMgGtT][bB])?$";
/// Pattern of a duration string.
pub(crate) const DURATION_PATTERN: &str = r"^([0-9]+(ms|s|m|h))+$";
/// Pattern of `runtime:`.
pub(crate) const RUNTIME_PATTERN: &str =
    r"^(auto|docker|(node|python|go|rust)(-[0-9]+(\.[0-9]+)*)?)$";
pub(crate) const DNS_LABEL_PATTERN: &str = r"^[a-z]([-a-z0-9]*[a-z0-9])?$";
pub(crate) const ENV_NAME_PATTERN: &str = r"^[A-Za-z_][A-Za-z0-9_]*$";

fn dns_label(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "pattern": DNS_LABEL_PATTERN, "maxLength": 63})
}

fn env_name(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "pattern": ENV_NAME_PATTERN})
}

fn runtime_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "anyOf": [
            {"enum": ["auto", "node-20", "node-22", "python-3.12", "go-1.22", "rust-1.78", "docker"]},
            {"type": "string", "pattern": RUNTIME_PATTERN},
            {"type": "null"}
        ],
        "default": "auto"
    })
}

fn text(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": ["string", "number", "boolean", "null"]})
}

fn rel_path(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": ["string", "null"], "minLength": 1, "pattern": r"^[^/]"})
}

fn build_args(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": ["object", "null"],
        "propertyNames": {"pattern": ENV_NAME_PATTERN},
        "additionalProperties": {"type": ["string", "number", "boolean"]}
    })
}

fn memory(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": ["string", "integer", "null"], "pattern": MEMORY_PATTERN, "minimum": 1})
}

fn cpu(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": ["string", "number", "null"], "pattern": r"^([0-9]+(\.[0-9]+)?|[0-9]+m)$", "exclusiveMinimum": 0})
}

fn duration(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": ["string", "integer", "null"], "pattern": DURATION_PATTERN, "minimum": 0})
}

fn domains(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": ["array", "null"],
        "items": {"type": "string", "pattern": r"^[^,\s]+$"}
    })
}
