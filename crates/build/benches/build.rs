//! Build benchmark: the Node example (`examples/node-hello`) built by the platform's
//! [`Builder`] and by a plain `docker build` (classic builder) of the same context and
//! Dockerfile, cold (no cache) and warm (everything cached), side by side in one run.
//!
//! ```text
//! HANZO_TEST_DOCKER=1 cargo bench -p hanzo-build --bench build
//! ```
//!
//! Prints figures and ratios; never asserts timings. Runs per case: `HANZO_BENCH_RUNS`
//! (default 3; the median is shown). Base images: the local ones of
//! `scripts/lib/base-images.sh` unless `HANZO_BASE_IMAGE_*` say otherwise; the extra CA
//! bundle: `HANZO_BUILD_CA_BUNDLE`. Every image it tags is removed at the end.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bollard::Docker;
use hanzo_build::{BuildOptions, BuildSettings, Builder, GENERATED_DOCKERFILE, plan};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

fn settings() -> BuildSettings {
    let mut s = BuildSettings::default();
    s.apply_env([
        ("HANZO_BASE_IMAGE_NODE_20", "node:18-bookworm-slim"),
        ("HANZO_BASE_IMAGE_NODE_18", "node:18-bookworm-slim"),
        ("HANZO_BASE_IMAGE_STATIC", "nginx:1.22-bookworm"),
    ]);
    s.apply_env(std::env::vars());
    s.ca_bundle = std::env::var("HANZO_BUILD_CA_BUNDLE")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .map(PathBuf::from);
    s
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).expect("mkdir");
    for entry in std::fs::read_dir(src).expect("read example") {
        let entry = entry.expect("entry");
        let to = dst.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), &to).expect("copy");
        }
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn pct(new: Duration, old: Duration) -> String {
    let r = (new.as_secs_f64() / old.as_secs_f64() - 1.0) * 100.0;
    format!("{r:+.0} %")
}

/// Tags made by this run, removed on drop (even after a panic).
struct Images(Vec<String>);

impl Drop for Images {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            let _ = Command::new("docker")
                .arg("rmi")
                .arg("-f")
                .args(&self.0)
                .output();
        }
    }
}

async fn platform_build(
    builder: &Builder,
    p: &hanzo_build::BuildPlan,
    tag: &str,
    no_cache: bool,
) -> Duration {
    let (tx, mut rx) = mpsc::channel::<String>(1024);
    let lines = tokio::spawn(async move {
        let mut v = Vec::new();
        while let Some(l) = rx.recv().await {
            v.push(l);
        }
        v
    });
    let started = Instant::now();
    let r = builder
        .build_with(
            p,
            &[tag.to_string()],
            &[],
            tx,
            CancellationToken::new(),
            &BuildOptions {
                no_cache,
                ..Default::default()
            },
        )
        .await;
    let took = started.elapsed();
    let lines = lines.await.unwrap_or_default();
    if let Err(e) = r {
        panic!("the platform build failed: {e}\n{}", lines.join("\n"));
    }
    took
}

fn docker_build(ctx: &Path, tag: &str, no_cache: bool) -> Duration {
    let mut cmd = Command::new("docker");
    cmd.env("DOCKER_BUILDKIT", "0")
        .arg("build")
        .arg("-q")
        .arg("-f")
        .arg(ctx.join(GENERATED_DOCKERFILE))
        .args(["-t", tag]);
    if no_cache {
        cmd.arg("--no-cache");
    }
    let started = Instant::now();
    let out = cmd.arg(ctx).output().expect("run docker build");
    let took = started.elapsed();
    assert!(
        out.status.success(),
        "docker build failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

#[tokio::main]
async fn main() {
    if std::env::var("HANZO_TEST_DOCKER").as_deref() != Ok("1") {
        println!("skipped: HANZO_TEST_DOCKER not set");
        return;
    }
    let runs: usize = std::env::var("HANZO_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n >= 1)
        .unwrap_or(3);
    let docker = Docker::connect_with_defaults().expect("Docker client");
    let settings = settings();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/node-hello");
    let work = tempfile::tempdir().expect("tempdir");

    // The platform builds from the checkout; `docker build` gets the same context with the
    // generated Dockerfile (and CA bundle) written where the platform puts them in the tar.
    let ctx_platform = work.path().join("platform");
    copy_dir(&example, &ctx_platform);
    let manifest = hanzo_manifest::load(&ctx_platform).expect("examples/node-hello/hanzo.yaml");
    let p = plan(&manifest, &ctx_platform, &settings).expect("plan");
    let ctx_docker = work.path().join("docker");
    copy_dir(&example, &ctx_docker);
    std::fs::create_dir_all(ctx_docker.join(".hanzo")).expect("mkdir");
    std::fs::write(ctx_docker.join(GENERATED_DOCKERFILE), &p.dockerfile).expect("Dockerfile");
    if let Some(ca) = &p.ca_bundle {
        std::fs::copy(ca, ctx_docker.join(hanzo_build::CONTEXT_CA_BUNDLE)).expect("CA bundle");
    }

    let builder = Builder::new(docker, settings.clone());
    let repo = format!("hanzo-bench-{:08x}", rand::random::<u32>());
    let mut images = Images(Vec::new());
    let mut tag = |name: String| {
        let t = format!("{repo}:{name}");
        images.0.push(t.clone());
        t
    };

    println!(
        "node-hello ({} → {}), {runs} run(s) per case, median; CPU {} / memory {} MiB limits on the platform's builds",
        p.runtime.family(),
        p.base_images.join(", "),
        settings.nano_cpus as f64 / 1e9,
        settings.memory_bytes / (1024 * 1024),
    );
    // Warm the engine once so the first measured run does not pay for loading the base image.
    platform_build(&builder, &p, &tag("prime".into()), false).await;

    let (mut pc, mut pw, mut dc, mut dw) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..runs {
        // Interleaved, so both see the same machine load; each warm build follows its own
        // cold one (the engine reuses the newest matching layer, and the two tools' context
        // archives differ in their headers, so their layers for `COPY . .` differ).
        pc.push(platform_build(&builder, &p, &tag(format!("pc{i}")), true).await);
        pw.push(platform_build(&builder, &p, &tag(format!("pw{i}")), false).await);
        dc.push(docker_build(&ctx_docker, &tag(format!("dc{i}")), true));
        dw.push(docker_build(&ctx_docker, &tag(format!("dw{i}")), false));
    }
    let (pc, pw, dc, dw) = (median(pc), median(pw), median(dc), median(dw));
    println!();
    println!(
        "{:<22}{:>12}{:>16}{:>22}",
        "", "platform", "docker build", "platform overhead"
    );
    println!(
        "{:<22}{:>12}{:>16}{:>22}",
        "cold (no cache)",
        secs(pc),
        secs(dc),
        format!(
            "{:+.2} s ({})",
            pc.as_secs_f64() - dc.as_secs_f64(),
            pct(pc, dc)
        )
    );
    println!(
        "{:<22}{:>12}{:>16}{:>22}",
        "warm (unchanged)",
        secs(pw),
        secs(dw),
        format!(
            "{:+.2} s ({})",
            pw.as_secs_f64() - dw.as_secs_f64(),
            pct(pw, dw)
        )
    );
    println!(
        "{:<22}{:>12}{:>16}",
        "warm vs cold",
        pct(pw, pc),
        pct(dw, dc)
    );
    let faster = (1.0 - pw.as_secs_f64() / pc.as_secs_f64()) * 100.0;
    println!(
        "\nan unchanged rebuild through the platform is {faster:.0} % faster than its cold build (goal: at least 80 %)"
    );
    drop(images);
}
