//! A resolved manifest written back as `hanzo.yaml`, every default filled in.

use crate::raw::*;
use crate::types::*;
use crate::units::{format_cpu, format_duration, format_memory};

/// The resolved manifest rendered as YAML with every default written out
/// (`hanzo manifest explain`). Parsing the output gives the same [`Manifest`].
pub fn explain(manifest: &Manifest) -> String {
    let file = to_file(manifest);
    let header = "# hanzo.yaml as Hanzo Platform reads it: every default filled in.\n";
    match serde_saphyr::to_string(&file) {
        Ok(yaml) => format!("{header}{yaml}"),
        // Serialising plain structs of strings and numbers cannot fail; say so if it ever does.
        Err(e) => format!("{header}# cannot render the manifest: {e}\n"),
    }
}

/// The input shape of a resolved manifest.
pub fn to_file(m: &Manifest) -> ManifestFile {
    let runtime = match &m.runtime {
        Runtime::Auto => "auto".to_string(),
        Runtime::Docker => "docker".to_string(),
        Runtime::Node { version } => format!("node-{version}"),
        Runtime::Python { version } => format!("python-{version}"),
        Runtime::Go { version } => format!("go-{version}"),
        Runtime::Rust { version } => format!("rust-{version}"),
    };
    let b = &m.build;
    let d = &m.deploy;
    ManifestFile {
        name: m.name.clone(),
        org: m.org.clone(),
        runtime: Some(runtime),
        version: m.version.clone(),
        build: Some(BuildFile {
            dockerfile: Some(b.dockerfile.clone()),
            context: Some(b.context.clone()),
            target: b.target.clone(),
            command: b.command.clone(),
            output: b.output.clone(),
            args: Some(b.args.clone()),
            network: Some(match b.network {
                BuildNetwork::Default => NetworkFile::Default,
                BuildNetwork::None => NetworkFile::None,
            }),
            timeout: Some(format_duration(b.timeout)),
        }),
        deploy: Some(DeployFile {
            instances: Some(d.instances),
            memory: Some(format_memory(d.memory_bytes)),
            cpu: Some(format_cpu(d.cpu_millis)),
            strategy: Some(match d.strategy {
                Strategy::Rolling => StrategyFile::Rolling,
                Strategy::Recreate => StrategyFile::Recreate,
            }),
            max_surge: Some(d.max_surge),
            max_unavailable: Some(d.max_unavailable),
            startup_timeout: Some(format_duration(d.startup_timeout)),
        }),
        services: Some(m.services.iter().map(service_file).collect()),
        env: Some(
            m.env
                .iter()
                .map(|e| EnvFile {
                    name: e.name.clone(),
                    value: e.value.clone(),
                    secret: Some(e.secret),
                    kms_key: e.kms_key.clone(),
                    kms_project: e.kms_project.clone(),
                    kms_env: e.kms_env.clone(),
                })
                .collect(),
        ),
        resources: Some(ResourcesFile {
            postgres: m.resources.postgres.as_ref().map(|p| PostgresFile {
                version: Some(p.version.clone()),
                storage: Some(format_memory(p.storage_bytes)),
            }),
            redis: m.resources.redis.as_ref().map(|r| RedisFile {
                version: Some(r.version.clone()),
                maxmemory: Some(format_memory(r.maxmemory_bytes)),
            }),
        }),
    }
}

fn service_file(s: &Service) -> ServiceFile {
    let web = s.kind == ServiceKind::Web;
    let h = &s.healthcheck;
    let healthcheck = (s.kind != ServiceKind::Cron).then(|| HealthCheckFile {
        path: h.path.clone(),
        exec: h.exec.clone(),
        interval: Some(format_duration(h.interval)),
        timeout: Some(format_duration(h.timeout)),
        retries: Some(h.retries),
    });
    ServiceFile {
        kind: match s.kind {
            ServiceKind::Web => ServiceKindFile::Web,
            ServiceKind::Worker => ServiceKindFile::Worker,
            ServiceKind::Cron => ServiceKindFile::Cron,
        },
        port: s.port,
        protocol: web.then_some(match s.protocol {
            Protocol::Http => ProtocolFile::Http,
            Protocol::Grpc => ProtocolFile::Grpc,
            Protocol::Tcp => ProtocolFile::Tcp,
        }),
        command: s.command.clone(),
        schedule: s.schedule.clone(),
        healthcheck,
        domains: web.then(|| {
            s.domains
                .iter()
                .map(|d| format!("{}{}", d.host, d.path.as_deref().unwrap_or("")))
                .collect()
        }),
    }
}
