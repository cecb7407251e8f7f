//! Snapshot tests of generated Dockerfiles, one per runtime and lockfile.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hanzo_manifest::*;

use crate::{BuildError, BuildSettings, GENERATED_DOCKERFILE, plan};

pub(crate) fn manifest(runtime: Runtime) -> Manifest {
    Manifest {
        name: "web".into(),
        org: "acme".into(),
        runtime,
        version: None,
        build: BuildConfig {
            dockerfile: "Dockerfile".into(),
            context: ".".into(),
            target: None,
            command: None,
            output: None,
            args: BTreeMap::new(),
            network: BuildNetwork::Default,
            timeout: Duration::from_secs(900),
        },
        deploy: DeployConfig {
            instances: 1,
            memory_bytes: 256 << 20,
            cpu_millis: 250,
            strategy: Strategy::Rolling,
            max_surge: 1,
            max_unavailable: 0,
            startup_timeout: Duration::from_secs(120),
        },
        services: vec![Service {
            kind: ServiceKind::Web,
            port: Some(3000),
            protocol: Protocol::Http,
            command: None,
            schedule: None,
            healthcheck: HealthCheck {
                path: Some("/".into()),
                exec: None,
                interval: Duration::from_secs(30),
                timeout: Duration::from_secs(5),
                retries: 3,
            },
            domains: vec![],
        }],
        env: vec![],
        resources: Resources::default(),
    }
}

fn node() -> Runtime {
    Runtime::Node {
        version: "20".into(),
    }
}

fn repo(files: &[(&str, &str)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for (path, body) in files {
        let p = d.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
    d
}

fn dockerfile(m: &Manifest, dir: &Path, settings: &BuildSettings) -> String {
    let p = plan(m, dir, settings).unwrap();
    assert!(p.generated);
    assert_eq!(p.dockerfile_path, GENERATED_DOCKERFILE);
    p.dockerfile
}

fn settings() -> BuildSettings {
    BuildSettings::default()
}

const PKG_START: &str = r#"{"name":"web","scripts":{"start":"node server.js","build":"tsc"}}"#;

#[test]
fn node_npm_ci_with_lockfile() {
    let d = repo(&[("package.json", PKG_START), ("package-lock.json", "{}")]);
    insta::assert_snapshot!(dockerfile(&manifest(node()), d.path(), &settings()));
}

#[test]
fn node_npm_install_without_lockfile_and_main() {
    let d = repo(&[("package.json", r#"{"name":"web","main":"src/app.js"}"#)]);
    insta::assert_snapshot!(dockerfile(&manifest(node()), d.path(), &settings()));
}

#[test]
fn node_yarn_with_build_command_and_args() {
    let d = repo(&[
        ("package.json", PKG_START),
        ("yarn.lock", ""),
        (".yarnrc", ""),
    ]);
    let mut m = manifest(Runtime::Node {
        version: "22".into(),
    });
    m.build.command = Some("yarn build".into());
    m.build.args.insert("NODE_ENV".into(), "production".into());
    m.build
        .args
        .insert("NEXT_TELEMETRY_DISABLED".into(), "1".into());
    insta::assert_snapshot!(dockerfile(&m, d.path(), &settings()));
}

#[test]
fn node_pnpm_static_site() {
    let d = repo(&[("package.json", PKG_START), ("pnpm-lock.yaml", "")]);
    let mut m = manifest(node());
    m.build.command = Some("pnpm run build".into());
    m.build.output = Some("./dist/".into());
    insta::assert_snapshot!(dockerfile(&m, d.path(), &settings()));
}

#[test]
fn node_with_ca_bundle_and_local_base_images() {
    let d = repo(&[("package.json", PKG_START), ("package-lock.json", "{}")]);
    let mut s = settings();
    s.ca_bundle = Some(PathBuf::from("/etc/ssl/certs/ca-certificates.crt"));
    s.apply_env([("HANZO_BASE_IMAGE_NODE_20", "node:18-bookworm-slim")]);
    let mut m = manifest(node());
    m.build.command = Some("npm run build".into());
    let p = plan(&m, d.path(), &s).unwrap();
    assert_eq!(p.ca_bundle, s.ca_bundle);
    assert_eq!(p.base_images, ["node:18-bookworm-slim"]);
    insta::assert_snapshot!(p.dockerfile);
}

#[test]
fn node_service_command_wins() {
    let d = repo(&[("package.json", "{}")]);
    let mut m = manifest(node());
    m.services[0].command = Some("node dist/server.js --port $PORT".into());
    let df = dockerfile(&m, d.path(), &settings());
    assert!(
        df.ends_with("CMD [\"sh\",\"-c\",\"node dist/server.js --port $PORT\"]\n"),
        "{df}"
    );
}

#[test]
fn node_without_entry_point_is_explained() {
    let d = repo(&[("package.json", "{}")]);
    let err = plan(&manifest(node()), d.path(), &settings()).unwrap_err();
    assert!(err.to_string().contains("start script"), "{err}");
}

#[test]
fn python_uv_locked() {
    let d = repo(&[
        ("pyproject.toml", "[project]\nname='x'\n"),
        ("uv.lock", ""),
        ("main.py", ""),
    ]);
    let mut m = manifest(Runtime::Python {
        version: "3.12".into(),
    });
    m.services[0].port = Some(8000);
    insta::assert_snapshot!(dockerfile(&m, d.path(), &settings()));
}

#[test]
fn python_uv_pyproject_only_with_ca() {
    let d = repo(&[
        ("pyproject.toml", "[project]\nname='x'\n"),
        ("app/main.py", ""),
    ]);
    let mut s = settings();
    s.ca_bundle = Some(PathBuf::from("/ca.pem"));
    let m = manifest(Runtime::Python {
        version: "3.12".into(),
    });
    insta::assert_snapshot!(dockerfile(&m, d.path(), &s));
}

#[test]
fn python_pip_requirements_with_service_command() {
    let d = repo(&[("requirements.txt", "flask\n"), ("app.py", "")]);
    let mut m = manifest(Runtime::Python {
        version: "3.11".into(),
    });
    m.services[0].command = Some("gunicorn -b 0.0.0.0:3000 app:app".into());
    m.build.command = Some("python manage.py collectstatic --noinput".into());
    insta::assert_snapshot!(dockerfile(&m, d.path(), &settings()));
}

#[test]
fn python_without_entry_point_is_explained() {
    let d = repo(&[("requirements.txt", "")]);
    let err = plan(
        &manifest(Runtime::Python {
            version: "3.12".into(),
        }),
        d.path(),
        &settings(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("uvicorn"), "{err}");
}

#[test]
fn go_module() {
    let d = repo(&[
        ("go.mod", "module x\n\ngo 1.22\n"),
        ("go.sum", ""),
        ("main.go", ""),
    ]);
    let m = manifest(Runtime::Go {
        version: "1.22".into(),
    });
    insta::assert_snapshot!(dockerfile(&m, d.path(), &settings()));
}

#[test]
fn go_vendored_with_ca() {
    let d = repo(&[
        ("go.mod", "module x\n"),
        ("vendor/modules.txt", ""),
        ("main.go", ""),
    ]);
    let mut s = settings();
    s.ca_bundle = Some(PathBuf::from("/ca.pem"));
    let mut m = manifest(Runtime::Go {
        version: "1.22".into(),
    });
    m.services[0].port = Some(8080);
    insta::assert_snapshot!(dockerfile(&m, d.path(), &s));
}

#[test]
fn rust_locked() {
    let d = repo(&[
        (
            "Cargo.toml",
            "[package]\nname = \"api-server\"\nversion = \"0.1.0\"\n",
        ),
        ("Cargo.lock", ""),
        ("src/main.rs", ""),
    ]);
    let m = manifest(Runtime::Rust {
        version: "1.78".into(),
    });
    insta::assert_snapshot!(dockerfile(&m, d.path(), &settings()));
}

#[test]
fn rust_with_ca_and_build_command() {
    let d = repo(&[(
        "Cargo.toml",
        "[package]\nname = \"lib\"\n[[bin]]\nname = \"srv\"\n",
    )]);
    let mut s = settings();
    s.ca_bundle = Some(PathBuf::from("/ca.pem"));
    let mut m = manifest(Runtime::Rust {
        version: "1.78".into(),
    });
    m.build.command = Some("./scripts/gen.sh".into());
    insta::assert_snapshot!(dockerfile(&m, d.path(), &s));
}

#[test]
fn docker_runtime_uses_the_users_dockerfile() {
    let d = repo(&[
        ("docker/app.Dockerfile", "FROM scratch AS base\nFROM base\n"),
        ("app/x", ""),
    ]);
    let mut m = manifest(Runtime::Docker);
    m.build.dockerfile = "docker/app.Dockerfile".into();
    m.build.target = Some("base".into());
    m.build.args.insert("A".into(), "1".into());
    m.build.network = BuildNetwork::None;
    let p = plan(&m, d.path(), &settings()).unwrap();
    assert!(!p.generated);
    assert_eq!(p.dockerfile, "FROM scratch AS base\nFROM base\n");
    assert_eq!(p.dockerfile_path, "docker/app.Dockerfile");
    assert_eq!(p.target.as_deref(), Some("base"));
    assert_eq!(p.network, BuildNetwork::None);
    assert_eq!(p.build_args.get("A").map(String::as_str), Some("1"));
    assert_eq!(p.base_images, ["scratch"]);

    // A Dockerfile outside the context is sent as .hanzo/Dockerfile.
    m.build.context = "app".into();
    let p = plan(&m, d.path(), &settings()).unwrap();
    assert_eq!(p.context_dir, d.path().join("app"));
    assert_eq!(p.dockerfile_path, GENERATED_DOCKERFILE);
}

#[test]
fn docker_runtime_without_dockerfile() {
    let d = repo(&[]);
    let err = plan(&manifest(Runtime::Docker), d.path(), &settings()).unwrap_err();
    assert!(matches!(err, BuildError::Plan { .. }));
    assert!(err.to_string().contains("does not exist"), "{err}");
}

#[test]
fn auto_detects_by_files() {
    let s = settings();
    let cases: [(&[(&str, &str)], Runtime); 5] = [
        (
            &[("Dockerfile", "FROM scratch\n"), ("package.json", "{}")],
            Runtime::Docker,
        ),
        (
            &[(
                "package.json",
                r#"{"engines":{"node":">=22"},"main":"a.js"}"#,
            )],
            Runtime::Node {
                version: "22".into(),
            },
        ),
        (
            &[("requirements.txt", ""), ("main.py", "")],
            Runtime::Python {
                version: "3.12".into(),
            },
        ),
        (
            &[("go.mod", "module x\ngo 1.22.3\n")],
            Runtime::Go {
                version: "1.22".into(),
            },
        ),
        (
            &[("Cargo.toml", "[package]\nname='a'\n")],
            Runtime::Rust {
                version: "1.78".into(),
            },
        ),
    ];
    for (files, want) in cases {
        let d = repo(files);
        assert_eq!(
            plan(&manifest(Runtime::Auto), d.path(), &s)
                .unwrap()
                .runtime,
            want
        );
    }
    let d = repo(&[("README.md", "")]);
    let err = plan(&manifest(Runtime::Auto), d.path(), &s).unwrap_err();
    assert!(matches!(err, BuildError::Detect(_)), "{err:?}");
}

#[test]
fn context_outside_the_repository_is_rejected() {
    let d = repo(&[("package.json", PKG_START)]);
    let mut m = manifest(node());
    m.build.context = "../..".into();
    let err = plan(&m, d.path(), &settings()).unwrap_err();
    assert!(err.to_string().contains("outside the repository"), "{err}");
}
