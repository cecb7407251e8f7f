//! The OpenAPI document (`crates/server/openapi.json`) and the router agree,
//! both ways. The response bodies are checked against the document by every
//! other API test (see `support::TestServer::request`).

mod support;

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::Value;
use support::{TestServer, document};

const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];

fn sample(template: &str) -> String {
    let id = uuid::Uuid::new_v4().to_string();
    template
        .replace("{app}", "nosuchapp")
        .replace("{app_id}", &id)
        .replace("{id}", &id)
        .replace("{key}", "KEY")
        .replace("{domain}", "d.example.com")
        .replace("{org}", "nosuchorg")
        .replace("{user}", "nobody")
        .replace("{provider}", "github")
}

#[test]
fn every_route_is_documented_and_every_documented_path_is_routed() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    let documented: BTreeSet<String> = doc["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .cloned()
        .collect();
    let routed: BTreeSet<String> = hanzo_server::api::route_paths()
        .into_iter()
        .map(str::to_string)
        .collect();
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routed).collect();
    assert!(
        undocumented.is_empty() && unrouted.is_empty(),
        "routes missing from openapi.json: {undocumented:?}; documented but not routed: {unrouted:?}"
    );
}

fn walk_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            if let Some(r) = o.get("$ref").and_then(Value::as_str) {
                out.push(r.to_string());
            }
            o.values().for_each(|x| walk_refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| walk_refs(x, out)),
        _ => {}
    }
}

#[test]
fn the_document_is_consistent() {
    let doc = document();
    let mut refs = Vec::new();
    walk_refs(&doc, &mut refs);
    for r in &refs {
        let mut v = &doc;
        for part in r.trim_start_matches("#/").split('/') {
            v = &v[part];
        }
        assert!(!v.is_null(), "dangling $ref {r}");
    }
    let mut ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let params: BTreeSet<String> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .map(str::to_string)
            .collect();
        for (method, op) in item.as_object().expect("path item") {
            assert!(METHODS.contains(&method.as_str()), "{method} {path}");
            let id = op["operationId"].as_str().expect("operationId");
            assert!(ids.insert(id.to_string()), "operationId {id} is used twice");
            let declared: BTreeSet<String> = op["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .filter(|p| p["in"] == "path")
                        .filter_map(|p| p["name"].as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            assert_eq!(declared, params, "path parameters of {method} {path}");
            assert!(
                op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                "{method} {path} documents no response"
            );
        }
    }
    // The spec's shapes, with its camelCase field names.
    let schemas = &doc["components"]["schemas"];
    for (name, fields) in [
        (
            "Application",
            &[
                "id",
                "name",
                "org",
                "repo",
                "branch",
                "runtime",
                "status",
                "domains",
                "createdAt",
                "updatedAt",
            ][..],
        ),
        (
            "Deployment",
            &[
                "id",
                "appId",
                "imageTag",
                "gitCommit",
                "gitMessage",
                "status",
                "deployedBy",
                "startedAt",
                "completedAt",
                "buildLogs",
                "url",
            ][..],
        ),
        (
            "DeploymentEvent",
            &["id", "deploymentId", "type", "message", "timestamp"][..],
        ),
    ] {
        for f in fields {
            assert!(
                !schemas[name]["properties"][f].is_null(),
                "{name}.{f} is not documented"
            );
            assert!(
                schemas[name]["required"]
                    .as_array()
                    .is_some_and(|r| r.iter().any(|x| x == f)),
                "{name}.{f} is not required"
            );
        }
    }
}

#[tokio::test]
async fn every_documented_method_is_served_and_no_other() {
    let server = TestServer::start("sqlite").await;
    let doc = document();
    let http = reqwest::Client::new();

    // Served without a token, byte for byte the committed file.
    let resp = http
        .get(format!("{}/api/v1/openapi.json", server.url))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.text().await.expect("body"),
        hanzo_server::api::openapi::DOCUMENT
    );

    for (template, item) in doc["paths"].as_object().expect("paths") {
        let path = sample(template);
        for m in METHODS {
            let method: Method = m.to_ascii_uppercase().parse().expect("method");
            let resp = http
                .request(method.clone(), format!("{}{path}", server.url))
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .expect("request");
            let status = resp.status().as_u16();
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            let error = body["error"].as_str().unwrap_or("");
            if item.get(m).is_some() {
                assert!(
                    status != 405 && !error.starts_with("there is no API route"),
                    "{m} {template} is documented but not served: {status} {body}"
                );
            } else {
                assert_eq!(
                    status, 405,
                    "{m} {template} is served but not documented: {body}"
                );
                assert!(error.contains("does not accept"), "{body}");
            }
        }
    }

    // Unknown routes answer a JSON 404 naming the document.
    let resp = http
        .get(format!("{}/api/v1/nothing-here", server.url))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 404);
    let body: Value = resp.json().await.expect("json");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("openapi.json")),
        "{body}"
    );
}
