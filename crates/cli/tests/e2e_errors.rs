//! Bad input gets one clear sentence with the fix, and leaves nothing half-done.

mod support;

use serde_json::Value;
use support::*;

fn deploy_fails_with(p: &Platform, app: &str, needle: &str) {
    let out = p.cli(&["deploy", app]);
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "deploy of {app} must fail:\n{}\n{err}",
        stdout(&out)
    );
    assert!(
        err.contains(needle),
        "the error names the cause ({needle}):\n{err}"
    );
    // Recorded as failed, with the reason, and nothing runs for it.
    let st: Value =
        serde_json::from_slice(&p.cli(&["status", app, "--json"]).stdout).expect("status json");
    assert_eq!(st["deployments"][0]["status"], "failed");
    assert!(
        st["deployments"][0]["error"]
            .as_str()
            .unwrap_or("")
            .contains(needle)
    );
    assert_eq!(st["status"], "failed");
    assert!(
        st["instancesObserved"]
            .as_array()
            .is_some_and(|a| a.is_empty()),
        "no instance is left behind: {}",
        st["instancesObserved"]
    );
}

#[test]
fn bad_repositories_and_builds_fail_clearly() {
    if !services_available() {
        return;
    }
    let p = Platform::start("err");
    let create = |name: &str, repo: &str, branch: &str| {
        let out = p.cli(&[
            "apps", "create", "--name", name, "--org", &p.org, "--repo", repo, "--branch", branch,
        ]);
        assert!(out.status.success(), "apps create {name}: {}", stderr(&out));
    };

    // No hanzo.yaml in the repository.
    let bare = Repo::from_example("node-hello", &p.org);
    std::fs::remove_file(bare.path().join("hanzo.yaml")).expect("rm");
    bare.commit("no manifest");
    create("nomanifest", &bare.path().display().to_string(), "main");
    deploy_fails_with(&p, "nomanifest", "no hanzo.yaml");

    // A repository that does not exist.
    create("unreachable", "/nonexistent/repository.git", "main");
    deploy_fails_with(&p, "unreachable", "/nonexistent/repository.git");

    // A branch that does not exist.
    let repo = Repo::from_example("node-hello", &p.org);
    repo.edit("hanzo.yaml", |t| t.replace("name: hello", "name: nobranch"));
    repo.commit("rename");
    create("nobranch", &repo.path().display().to_string(), "release-9");
    deploy_fails_with(&p, "nobranch", "release-9");

    // A build that fails shows the tail of its log.
    let broken = Repo::from_example("docker-hello", &p.org);
    broken.edit("hanzo.yaml", |t| {
        t.replace("name: docker-hello", "name: broken")
    });
    broken.edit("Dockerfile", |t| {
        t.replace(
            "COPY app.py .",
            "COPY app.py .\nRUN echo 'compiling the frobnicator' && exit 3",
        )
    });
    broken.commit("broken build");
    create("broken", &broken.path().display().to_string(), "main");
    deploy_fails_with(&p, "broken", "compiling the frobnicator");

    // The manifest must describe the application it is deployed as.
    let other = Repo::from_example("docker-hello", &p.org);
    create("mismatch", &other.path().display().to_string(), "main");
    deploy_fails_with(&p, "mismatch", "name: mismatch");

    // Unknown application: exit code 4, one sentence.
    let out = p.cli(&["deploy", "no-such-app"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no-such-app not found"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_dead_docker_daemon_is_reported_and_nothing_is_recorded() {
    if !services_available() {
        return;
    }
    let p = Platform::start_with(
        "nodock",
        vec![(
            "DOCKER_HOST".into(),
            "unix:///nonexistent/docker.sock".into(),
        )],
    );
    let repo = Repo::from_example("node-hello", &p.org);
    let out = p.cli(&[
        "apps",
        "create",
        "--name",
        "hello",
        "--org",
        &p.org,
        "--repo",
        &repo.path().display().to_string(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = p.cli(&["deploy", "hello"]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("Docker Engine") && err.contains("start dockerd"),
        "{err}"
    );
    let st: Value =
        serde_json::from_slice(&p.cli(&["status", "hello", "--json"]).stdout).expect("status json");
    assert_eq!(
        st["deployments"].as_array().map(Vec::len),
        Some(0),
        "no deployment is recorded"
    );
}
