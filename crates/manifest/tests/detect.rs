//! Runtime detection over small example repositories, one per runtime and per
//! precedence rule of the spec's table (Dockerfile first, then node, python, go, rust).

use hanzo_manifest::{DetectError, Runtime, detect_runtime, parse, resolve_runtime};
use std::path::Path;

/// A repository in a temporary directory, removed when dropped.
struct Repo(tempfile::TempDir);

impl Repo {
    fn new(files: &[(&str, &str)]) -> Repo {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        Repo(dir)
    }
    fn path(&self) -> &Path {
        self.0.path()
    }
    fn detect(&self) -> Runtime {
        detect_runtime(self.path()).unwrap_or_else(|e| panic!("{e}"))
    }
}

fn node(v: &str) -> Runtime {
    Runtime::Node { version: v.into() }
}
fn python(v: &str) -> Runtime {
    Runtime::Python { version: v.into() }
}
fn go(v: &str) -> Runtime {
    Runtime::Go { version: v.into() }
}
fn rust(v: &str) -> Runtime {
    Runtime::Rust { version: v.into() }
}

#[test]
fn dockerfile_is_docker() {
    assert_eq!(
        Repo::new(&[("Dockerfile", "FROM scratch\n")]).detect(),
        Runtime::Docker
    );
}

#[test]
fn node_version_comes_from_engines() {
    assert_eq!(
        Repo::new(&[("package.json", r#"{"engines": {"node": "22.x"}}"#)]).detect(),
        node("22")
    );
    assert_eq!(
        Repo::new(&[("package.json", r#"{"engines": {"node": ">=18.17"}}"#)]).detect(),
        node("18")
    );
    assert_eq!(
        Repo::new(&[("package.json", r#"{"engines": {"node": "^20.11.1"}}"#)]).detect(),
        node("20")
    );
    // Without engines.node the default version applies.
    assert_eq!(
        Repo::new(&[("package.json", r#"{"name": "x"}"#)]).detect(),
        node("20")
    );
    assert_eq!(
        Repo::new(&[("package.json", r#"{"engines": {"node": "latest"}}"#)]).detect(),
        node("20")
    );
}

#[test]
fn broken_package_json_is_an_error_naming_the_file() {
    let repo = Repo::new(&[("package.json", "{ not json")]);
    let err = detect_runtime(repo.path()).unwrap_err();
    assert!(
        matches!(err, DetectError::InvalidPackageJson { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("package.json"), "{err}");
}

#[test]
fn python_from_requirements_or_pyproject() {
    assert_eq!(
        Repo::new(&[("requirements.txt", "flask\n")]).detect(),
        python("3.12")
    );
    assert_eq!(
        Repo::new(&[("pyproject.toml", "[project]\nname = \"x\"\n")]).detect(),
        python("3.12")
    );
    assert_eq!(
        Repo::new(&[
            ("requirements.txt", "flask\n"),
            (".python-version", "3.11.4\n")
        ])
        .detect(),
        python("3.11")
    );
    assert_eq!(
        Repo::new(&[(
            "pyproject.toml",
            "[project]\nrequires-python = \">=3.10\"\n"
        )])
        .detect(),
        python("3.10")
    );
    // .python-version wins over requires-python.
    assert_eq!(
        Repo::new(&[
            (
                "pyproject.toml",
                "[project]\nrequires-python = \">=3.10\"\n"
            ),
            (".python-version", "3.13\n")
        ])
        .detect(),
        python("3.13")
    );
}

#[test]
fn go_version_comes_from_go_mod() {
    assert_eq!(
        Repo::new(&[("go.mod", "module example.com/x\n\ngo 1.21.5\n")]).detect(),
        go("1.21")
    );
    assert_eq!(
        Repo::new(&[("go.mod", "module example.com/x\n")]).detect(),
        go("1.22")
    );
    // `toolchain go1.23` is not the `go` directive.
    assert_eq!(
        Repo::new(&[("go.mod", "module x\ntoolchain go1.23.0\ngo 1.22\n")]).detect(),
        go("1.22")
    );
}

#[test]
fn rust_version_comes_from_the_toolchain_file() {
    let cargo = ("Cargo.toml", "[package]\nname = \"x\"\n");
    assert_eq!(Repo::new(&[cargo]).detect(), rust("1.78"));
    assert_eq!(
        Repo::new(&[cargo, ("rust-toolchain", "1.80.1\n")]).detect(),
        rust("1.80")
    );
    assert_eq!(
        Repo::new(&[
            cargo,
            ("rust-toolchain.toml", "[toolchain]\nchannel = \"1.79.0\"\n")
        ])
        .detect(),
        rust("1.79")
    );
    assert_eq!(
        Repo::new(&[
            cargo,
            ("rust-toolchain.toml", "[toolchain]\nchannel = \"stable\"\n")
        ])
        .detect(),
        rust("1.78")
    );
    assert_eq!(
        Repo::new(&[cargo, ("rust-toolchain", "nightly-2024-05-01\n")]).detect(),
        rust("1.78")
    );
}

#[test]
fn dockerfile_takes_precedence_over_every_language() {
    let repo = Repo::new(&[
        ("Dockerfile", "FROM scratch\n"),
        ("package.json", "{}"),
        ("requirements.txt", ""),
        ("go.mod", "module x\n"),
        ("Cargo.toml", ""),
    ]);
    assert_eq!(repo.detect(), Runtime::Docker);
}

#[test]
fn languages_follow_the_table_order() {
    let all = [
        ("package.json", "{}"),
        ("requirements.txt", ""),
        ("go.mod", "module x\n"),
        ("Cargo.toml", ""),
    ];
    assert_eq!(Repo::new(&all).detect(), node("20"));
    assert_eq!(Repo::new(&all[1..]).detect(), python("3.12"));
    assert_eq!(Repo::new(&all[2..]).detect(), go("1.22"));
    assert_eq!(Repo::new(&all[3..]).detect(), rust("1.78"));
}

#[test]
fn nothing_detected_names_what_was_looked_for() {
    let repo = Repo::new(&[("README.md", "hello"), ("src/index.js", "")]);
    let err = detect_runtime(repo.path()).unwrap_err();
    assert!(matches!(err, DetectError::NothingDetected { .. }));
    let msg = err.to_string();
    for looked_for in [
        "Dockerfile",
        "package.json",
        "pyproject.toml",
        "requirements.txt",
        "go.mod",
        "Cargo.toml",
        "runtime:",
    ] {
        assert!(msg.contains(looked_for), "{msg} should name {looked_for}");
    }
    // A directory named like a marker file is not a marker.
    let repo = Repo::new(&[("Dockerfile/README", "")]);
    assert!(detect_runtime(repo.path()).is_err());
}

fn manifest(extra: &str) -> hanzo_manifest::Manifest {
    parse(&format!("name: x\norg: y\n{extra}"), "hanzo.yaml").unwrap_or_else(|d| panic!("{d}"))
}

#[test]
fn explicit_runtime_overrides_detection() {
    let repo = Repo::new(&[("Dockerfile", "FROM scratch\n"), ("package.json", "{}")]);
    assert_eq!(
        resolve_runtime(&manifest("runtime: python-3.12\n"), repo.path()).unwrap(),
        python("3.12")
    );
    assert_eq!(
        resolve_runtime(&manifest("runtime: node-22\n"), repo.path()).unwrap(),
        node("22")
    );
    assert_eq!(
        resolve_runtime(&manifest("runtime: auto\n"), repo.path()).unwrap(),
        Runtime::Docker
    );
    assert_eq!(
        resolve_runtime(&manifest(""), repo.path()).unwrap(),
        Runtime::Docker
    );
}

#[test]
fn docker_runtime_uses_the_manifest_dockerfile() {
    let repo = Repo::new(&[
        ("deploy/Dockerfile.prod", "FROM scratch\n"),
        ("package.json", "{}"),
    ]);
    let m = manifest("runtime: docker\nbuild:\n  dockerfile: deploy/Dockerfile.prod\n");
    assert_eq!(resolve_runtime(&m, repo.path()).unwrap(), Runtime::Docker);
    // auto finds the configured Dockerfile before package.json.
    let m = manifest("build:\n  dockerfile: deploy/Dockerfile.prod\n");
    assert_eq!(resolve_runtime(&m, repo.path()).unwrap(), Runtime::Docker);
    // An explicit docker runtime without its Dockerfile is an error naming the path.
    let m = manifest("runtime: docker\n");
    let err = resolve_runtime(&m, repo.path()).unwrap_err();
    assert!(
        matches!(err, DetectError::DockerfileMissing { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("Dockerfile"), "{err}");
}

#[test]
fn auto_looks_in_the_build_context_first() {
    let repo = Repo::new(&[
        ("app/go.mod", "module x\ngo 1.21\n"),
        ("package.json", "{}"),
    ]);
    let m = manifest("build:\n  context: app\n");
    assert_eq!(resolve_runtime(&m, repo.path()).unwrap(), go("1.21"));
    // The plain detector only looks at the root.
    assert_eq!(repo.detect(), node("20"));
}
