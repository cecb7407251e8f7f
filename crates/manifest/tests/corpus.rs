//! The manifest corpus: every valid manifest parses, renders through `explain` and
//! parses back to the same value, and passes the JSON Schema; every invalid one is
//! refused with the messages kept in snapshots. `invalid/structural` cases must
//! also fail the JSON Schema (an editor flags them), `invalid/semantic` cases pass
//! it (only the platform's rules catch them), `invalid/yaml` cases are not YAML
//! the platform accepts at all.

use std::path::{Path, PathBuf};

fn corpus(dir: &str) -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no corpus in {}", root.display());
    files
        .into_iter()
        .map(|p| {
            let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
            (stem, std::fs::read_to_string(&p).unwrap())
        })
        .collect()
}

fn validator() -> jsonschema::Validator {
    jsonschema::draft202012::new(&hanzo_manifest::schema())
        .expect("the schema is a valid draft 2020-12 schema")
}

fn schema_errors(v: &jsonschema::Validator, text: &str) -> Vec<String> {
    let json: serde_json::Value = if text.trim().is_empty() {
        serde_json::Value::Null
    } else {
        serde_saphyr::from_str(text).expect("corpus file converts to JSON")
    };
    v.iter_errors(&json)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

fn snapshot(folder: &str, name: &str, value: String) {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/snapshots")
            .join(folder),
    );
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.bind(|| insta::assert_snapshot!(name.to_string(), value));
}

#[test]
fn valid_manifests_parse_explain_round_trip_and_pass_the_schema() {
    let v = validator();
    for (name, text) in corpus("valid") {
        let m =
            hanzo_manifest::parse(&text, "hanzo.yaml").unwrap_or_else(|d| panic!("{name}: {d}"));
        let explained = hanzo_manifest::explain(&m);
        let again = hanzo_manifest::parse(&explained, "hanzo.yaml")
            .unwrap_or_else(|d| panic!("{name}: explain output does not parse:\n{explained}\n{d}"));
        assert_eq!(
            m, again,
            "{name}: explain output parses to a different manifest"
        );
        let errors = schema_errors(&v, &text);
        assert!(
            errors.is_empty(),
            "{name} fails the JSON Schema: {errors:#?}"
        );
        let errors = schema_errors(&v, &explained);
        assert!(
            errors.is_empty(),
            "explain output of {name} fails the JSON Schema: {errors:#?}"
        );
        snapshot("valid", &name, explained);
    }
}

fn invalid(folder: &str, schema_verdict: Option<bool>) {
    let v = validator();
    for (name, text) in corpus(&format!("invalid/{folder}")) {
        let d = match hanzo_manifest::parse(&text, "hanzo.yaml") {
            Ok(m) => panic!("{name} was accepted: {m:#?}"),
            Err(d) => d,
        };
        assert!(!d.is_empty(), "{name}: no diagnostics");
        for item in &d {
            assert!(item.line >= 1 && item.column >= 1, "{name}: {item}");
            assert!(!item.help.is_empty(), "{name}: no help in {item}");
        }
        match schema_verdict {
            Some(false) => assert!(
                !schema_errors(&v, &text).is_empty(),
                "{name} passes the JSON Schema but is structurally invalid"
            ),
            Some(true) => {
                let errors = schema_errors(&v, &text);
                assert!(
                    errors.is_empty(),
                    "{name} is meant to be well-formed for the JSON Schema: {errors:#?}"
                );
            }
            None => {}
        }
        snapshot(&format!("invalid/{folder}"), &name, d.to_string());
    }
}

#[test]
fn structurally_invalid_manifests_fail_parse_and_schema() {
    invalid("structural", Some(false));
}

#[test]
fn semantically_invalid_manifests_fail_parse_only() {
    invalid("semantic", Some(true));
}

#[test]
fn hostile_or_broken_yaml_is_refused() {
    invalid("yaml", None);
}

#[test]
fn every_problem_is_reported_in_one_pass() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/corpus/invalid/structural/many-problems.yaml"),
    )
    .unwrap();
    let d = hanzo_manifest::parse(&text, "hanzo.yaml").unwrap_err();
    assert!(d.len() >= 8, "expected every problem, got:\n{d}");
    let lines: Vec<usize> = d.iter().map(|i| i.line).collect();
    let mut sorted = lines.clone();
    sorted.sort();
    assert_eq!(lines, sorted, "diagnostics are in file order");
}

#[test]
fn oversized_manifest_is_refused_before_parsing() {
    let mut text = String::from("name: shop\norg: acme\n");
    while text.len() <= hanzo_manifest::MAX_MANIFEST_BYTES {
        text.push_str("# padding padding padding padding padding padding padding padding\n");
    }
    let d = hanzo_manifest::parse(&text, "hanzo.yaml").unwrap_err();
    assert_eq!(d.len(), 1);
    assert!(
        d.items[0]
            .message
            .ends_with("bytes, more than the limit of 256 KiB"),
        "{d}"
    );
}
