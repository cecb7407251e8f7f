//! The public API as the build crate and the CLI use it.

use hanzo_manifest::*;
use std::time::Duration;

#[test]
fn defaults_follow_the_spec() {
    let m = parse("name: hello\norg: acme\n", "hanzo.yaml").unwrap();
    assert_eq!(m.runtime, Runtime::Auto);
    assert_eq!(m.deploy.instances, 1);
    assert_eq!(m.deploy.memory_bytes, 256 * 1024 * 1024);
    assert_eq!(m.deploy.cpu_millis, 250);
    assert_eq!(m.deploy.strategy, Strategy::Rolling);
    assert_eq!((m.deploy.max_surge, m.deploy.max_unavailable), (1, 0));
    assert_eq!(m.deploy.startup_timeout, Duration::from_secs(120));
    assert_eq!(m.build.dockerfile, "Dockerfile");
    assert_eq!(m.build.context, ".");
    assert_eq!(m.build.network, BuildNetwork::Default);
    assert_eq!(m.build.timeout, Duration::from_secs(15 * 60));
    let web = m.web_service().unwrap();
    assert_eq!(web.port, Some(3000));
    assert_eq!(web.protocol, Protocol::Http);
    assert_eq!(web.healthcheck.path.as_deref(), Some("/"));
    assert_eq!(web.healthcheck.interval, Duration::from_secs(30));
    assert_eq!(web.healthcheck.timeout, Duration::from_secs(5));
    assert_eq!(web.healthcheck.retries, 3);
}

#[test]
fn runtimes_and_versions() {
    let rt = |s: &str| {
        parse(&format!("name: a\norg: b\nruntime: {s}\n"), "hanzo.yaml").map(|m| m.runtime)
    };
    assert_eq!(
        rt("node-22").unwrap(),
        Runtime::Node {
            version: "22".into()
        }
    );
    assert_eq!(
        rt("node-18").unwrap(),
        Runtime::Node {
            version: "18".into()
        }
    );
    assert_eq!(
        rt("python-3.12").unwrap(),
        Runtime::Python {
            version: "3.12".into()
        }
    );
    assert_eq!(
        rt("go-1.22").unwrap(),
        Runtime::Go {
            version: "1.22".into()
        }
    );
    assert_eq!(
        rt("rust-1.78").unwrap(),
        Runtime::Rust {
            version: "1.78".into()
        }
    );
    assert_eq!(
        rt("rust").unwrap(),
        Runtime::Rust {
            version: "1.78".into()
        }
    );
    assert_eq!(rt("docker").unwrap(), Runtime::Docker);
    let err = rt("golang-1.22").unwrap_err();
    assert!(err.items[0].help.contains("go-1.22"), "{err}");
    assert!(rt("ruby-3").is_err());
}

#[test]
fn secrets_default_their_kms_project_to_the_app_name() {
    let m = parse(
        "name: cloud\norg: hanzo\nenv:\n  - name: DB\n    secret: true\n    kms_key: CLOUD_DB\n  - name: A\n    value: b\n",
        "hanzo.yaml",
    )
    .unwrap();
    assert_eq!(m.env[0].kms_project.as_deref(), Some("cloud"));
    assert_eq!(m.env[0].value, None);
    assert_eq!(m.env[1].value.as_deref(), Some("b"));
    assert_eq!(m.env[1].kms_project, None);
}

#[test]
fn domains_are_normalised() {
    let m = parse(
        "name: a\norg: b\nservices:\n  - type: web\n    port: 80\n    domains: [Bücher.Example/shop/]\n",
        "hanzo.yaml",
    )
    .unwrap();
    let d = &m.services[0].domains[0];
    assert_eq!(
        (d.host.as_str(), d.path.as_deref()),
        ("xn--bcher-kva.example", Some("/shop"))
    );
    assert_eq!(d.to_string(), "xn--bcher-kva.example/shop");
    assert_eq!(
        parse_domain("a.example.com,b.example.com")
            .unwrap_err()
            .help
            .lines()
            .count(),
        3
    );
}

#[test]
fn diagnostics_render_position_message_help_line_and_caret() {
    let err = parse("name: a\norg: b\ndeploy:\n  memory: 512m\n", "hanzo.yaml").unwrap_err();
    assert_eq!(err.len(), 1);
    let d = &err.items[0];
    assert_eq!((d.line, d.column), (4, 11));
    assert_eq!(d.source_line.as_deref(), Some("  memory: 512m"));
    let shown = d.to_string();
    assert!(
        shown.starts_with("hanzo.yaml:4:11: `deploy.memory`: "),
        "{shown}"
    );
    assert!(shown.contains(" — write 512Mi"), "{shown}");
    assert!(
        shown.ends_with("4 |   memory: 512m\n  |           ^^^^"),
        "{shown}"
    );
    let custom = parse("name: A\norg: b\n", "apps/x/hanzo.yml").unwrap_err();
    assert!(
        custom.to_string().starts_with("apps/x/hanzo.yml:1:7: "),
        "{custom}"
    );
}

#[test]
fn load_reads_hanzo_yaml_or_hanzo_yml() {
    let dir = tempfile::tempdir().unwrap();
    let err = load(dir.path()).unwrap_err();
    assert!(matches!(err, LoadError::Missing { .. }));
    assert_eq!(
        err.to_string(),
        format!(
            "no hanzo.yaml in {} — add one at the repository root (see `hanzo manifest schema`)",
            dir.path().display()
        )
    );
    std::fs::write(dir.path().join("hanzo.yml"), "name: a\norg: b\n").unwrap();
    assert_eq!(load(dir.path()).unwrap().name, "a");
    std::fs::write(dir.path().join("hanzo.yaml"), "name: c\norg: b\n").unwrap();
    assert_eq!(load(dir.path()).unwrap().name, "c");
    std::fs::write(dir.path().join("hanzo.yaml"), "name: C\norg: b\n").unwrap();
    let err = load(dir.path()).unwrap_err();
    assert_eq!(err.diagnostics().map(|d| d.len()), Some(1));
    assert!(err.to_string().starts_with("hanzo.yaml:1:7: "), "{err}");
    std::fs::write(dir.path().join("hanzo.yaml"), [0xff, 0xfe, b'x']).unwrap();
    assert!(matches!(
        load(dir.path()).unwrap_err(),
        LoadError::NotUtf8 { .. }
    ));
    std::fs::write(
        dir.path().join("hanzo.yaml"),
        vec![b'#'; MAX_MANIFEST_BYTES + 10],
    )
    .unwrap();
    assert!(matches!(
        load(dir.path()).unwrap_err(),
        LoadError::TooLarge { .. }
    ));
}

#[test]
fn resolved_manifest_round_trips_through_json() {
    // The server stores the resolved manifest as JSON.
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/corpus/valid/spec-full.yaml"
    ))
    .unwrap();
    let m = parse(&text, "hanzo.yaml").unwrap();
    let json = serde_json::to_value(&m).unwrap();
    assert_eq!(serde_json::from_value::<Manifest>(json).unwrap(), m);
}

/// The JSON Schema describes exactly the keys the validator accepts, per section.
#[test]
fn schema_properties_match_the_validator() {
    let schema = schema();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    let props = |v: &serde_json::Value| -> Vec<String> {
        let mut keys: Vec<String> = v["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        keys.sort();
        keys
    };
    let defs = &schema["$defs"];
    let sections = [
        (
            &schema,
            "ManifestFile",
            &[
                "build",
                "deploy",
                "env",
                "name",
                "org",
                "resources",
                "runtime",
                "services",
                "version",
            ][..],
        ),
        (
            &defs["BuildFile"],
            "BuildFile",
            &[
                "args",
                "command",
                "context",
                "dockerfile",
                "network",
                "output",
                "target",
                "timeout",
            ][..],
        ),
        (
            &defs["DeployFile"],
            "DeployFile",
            &[
                "cpu",
                "instances",
                "max_surge",
                "max_unavailable",
                "memory",
                "startup_timeout",
                "strategy",
            ][..],
        ),
        (
            &defs["ServiceFile"],
            "ServiceFile",
            &[
                "command",
                "domains",
                "healthcheck",
                "port",
                "protocol",
                "schedule",
                "type",
            ][..],
        ),
        (
            &defs["HealthCheckFile"],
            "HealthCheckFile",
            &["exec", "interval", "path", "retries", "timeout"][..],
        ),
        (
            &defs["EnvFile"],
            "EnvFile",
            &[
                "kms_env",
                "kms_key",
                "kms_project",
                "name",
                "secret",
                "value",
            ][..],
        ),
        (
            &defs["ResourcesFile"],
            "ResourcesFile",
            &["postgres", "redis"][..],
        ),
        (
            &defs["PostgresFile"],
            "PostgresFile",
            &["storage", "version"][..],
        ),
        (
            &defs["RedisFile"],
            "RedisFile",
            &["maxmemory", "version"][..],
        ),
    ];
    for (s, name, expected) in sections {
        assert_eq!(props(s), expected, "{name}");
        assert_eq!(
            s["additionalProperties"], false,
            "{name} refuses unknown keys"
        );
    }
    assert_eq!(schema["required"], serde_json::json!(["name", "org"]));
}

#[test]
fn explain_quotes_strings_that_look_like_other_scalars() {
    for tricky in [
        "on",
        "yes",
        "no",
        "null",
        "~",
        "1.0",
        "0x10",
        "1e3",
        ".inf",
        "true",
        "0 */6 * * *",
        "- x",
        "a: b",
        "#x",
        "'q'",
        "\"d\"",
        " lead",
        "é ü",
        "&a",
        "*a",
        "!tag",
        "%x",
        "@x",
        "`x`",
        "1:2",
        "0o17",
        "012",
    ] {
        let yaml = format!(
            "name: a\norg: b\nversion: {}\nbuild:\n  command: {}\nenv:\n  - name: X\n    value: {}\n",
            json(tricky),
            json(tricky),
            json(tricky)
        );
        let m = parse(&yaml, "hanzo.yaml").unwrap_or_else(|d| panic!("{tricky:?}: {d}"));
        assert_eq!(m.build.command.as_deref(), Some(tricky));
        let again = parse(&explain(&m), "hanzo.yaml")
            .unwrap_or_else(|d| panic!("{tricky:?}: {d}\n{}", explain(&m)));
        assert_eq!(m, again, "{tricky:?}:\n{}", explain(&m));
    }
}

fn json(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

#[test]
fn yaml_1_1_booleans_are_strings() {
    let m = parse(
        "name: a\norg: b\nenv:\n  - name: COUNTRY\n    value: no\n",
        "hanzo.yaml",
    )
    .unwrap();
    assert_eq!(m.env[0].value.as_deref(), Some("no"));
    let err = parse(
        "name: a\norg: b\nenv:\n  - name: A\n    secret: yes\n    kms_key: K\n",
        "hanzo.yaml",
    )
    .unwrap_err();
    assert!(
        err.items[0].message.contains("expected true or false"),
        "{err}"
    );
}

#[test]
fn schema_snapshot() {
    insta::assert_json_snapshot!("schema", schema());
}
