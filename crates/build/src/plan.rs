//! Build planning: which Dockerfile, which context, which arguments (pure apart from reading
//! the checkout; nothing is written and Docker is not called).

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use hanzo_manifest::{BuildNetwork, Manifest, Runtime};
use serde::Serialize;

use crate::BuildError;
use crate::dockerfile;

/// Where generated Dockerfiles live inside the build context.
pub const GENERATED_DOCKERFILE: &str = ".hanzo/Dockerfile";
/// Where the extra CA bundle is placed inside the build context.
pub const CONTEXT_CA_BUNDLE: &str = ".hanzo/ca.crt";

/// Platform settings for builds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuildSettings {
    /// Runtime key (`node-20`, `node-22`, `python-3.12`, `go-1.22`, `rust-1.78`, …, plus
    /// `static` for the static-site server and `distroless` for the minimal runtime image of
    /// compiled languages) → base image. Keys not listed fall back to the official image of
    /// that version (see [`BuildSettings::base_image`]).
    pub base_images: BTreeMap<String, String>,
    /// Extra CA bundle trusted by package managers during builds (corporate proxies, mirrors).
    /// Generated Dockerfiles use it for their install steps; it is also placed in every build
    /// context as `.hanzo/ca.crt` for user Dockerfiles. npm adds it to its roots; pip, uv, Go
    /// and Cargo replace their roots with it, so it should contain the public roots as well.
    pub ca_bundle: Option<PathBuf>,
    /// Memory limit of every build step (default 4 GiB).
    pub memory_bytes: i64,
    /// CPU limit in billionths of a CPU (default 2 CPUs).
    pub nano_cpus: i64,
    /// Default build timeout (15 minutes); `build.timeout` of the manifest is per application.
    pub timeout: Duration,
}

pub const DEFAULT_MEMORY_BYTES: i64 = 4 * 1024 * 1024 * 1024;
pub const DEFAULT_NANO_CPUS: i64 = 2_000_000_000;
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15 * 60);

impl Default for BuildSettings {
    fn default() -> Self {
        let base_images = [
            ("node-20", "node:20-bookworm-slim"),
            ("node-22", "node:22-bookworm-slim"),
            ("python-3.12", "python:3.12-slim-bookworm"),
            ("go-1.22", "golang:1.22-bookworm"),
            ("rust-1.78", "rust:1.78-bookworm"),
            ("static", "nginx:stable"),
            ("distroless", "gcr.io/distroless/cc-debian12"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        BuildSettings {
            base_images,
            ca_bundle: None,
            memory_bytes: DEFAULT_MEMORY_BYTES,
            nano_cpus: DEFAULT_NANO_CPUS,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl BuildSettings {
    /// The base image for a runtime key: the configured one, else the official image of
    /// that family and version (`node-18` → `node:18-bookworm-slim`).
    pub fn base_image(&self, key: &str) -> String {
        if let Some(image) = self.base_images.get(key) {
            return image.clone();
        }
        let (family, version) = key.split_once('-').unwrap_or((key, ""));
        match family {
            "node" => format!("node:{version}-bookworm-slim"),
            "python" => format!("python:{version}-slim-bookworm"),
            "go" => format!("golang:{version}-bookworm"),
            "rust" => format!("rust:{version}-bookworm"),
            "static" => "nginx:stable".to_string(),
            _ => "gcr.io/distroless/cc-debian12".to_string(),
        }
    }

    /// Applies `HANZO_BASE_IMAGE_<KEY>=<image>` variables: `NODE_18` → `node-18`,
    /// `PYTHON_3_11` → `python-3.11`, `STATIC` → `static`, `DISTROLESS` → `distroless`.
    /// Other variables are ignored. Returns the keys that were set.
    pub fn apply_env<I, K, V>(&mut self, vars: I) -> Vec<String>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut set = Vec::new();
        for (k, v) in vars {
            let Some(rest) = k.as_ref().strip_prefix("HANZO_BASE_IMAGE_") else {
                continue;
            };
            let v = v.as_ref().trim();
            if rest.is_empty() || v.is_empty() {
                continue;
            }
            let key = env_suffix_to_key(rest);
            self.base_images.insert(key.clone(), v.to_string());
            set.push(key);
        }
        set
    }
}

/// `NODE_18` → `node-18`, `PYTHON_3_11` → `python-3.11`.
pub fn env_suffix_to_key(suffix: &str) -> String {
    let lower = suffix.to_ascii_lowercase();
    match lower.split_once('_') {
        Some((family, version)) => format!("{family}-{}", version.replace('_', ".")),
        None => lower,
    }
}

/// What will be built, and how.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BuildPlan {
    /// The resolved runtime (never `Auto`).
    pub runtime: Runtime,
    /// The Dockerfile's contents (the user's, or a generated one).
    pub dockerfile: String,
    /// Whether `dockerfile` was generated by the platform.
    pub generated: bool,
    /// The build context on disk.
    pub context_dir: PathBuf,
    /// Path of the Dockerfile inside the context (`.hanzo/Dockerfile` when generated, or when
    /// the user's Dockerfile lies outside the context).
    pub dockerfile_path: String,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub network: BuildNetwork,
    /// The extra CA bundle placed into the context as `.hanzo/ca.crt`, if any.
    pub ca_bundle: Option<PathBuf>,
    /// Base images the Dockerfile starts from (for `hanzo build plan` and checks).
    pub base_images: Vec<String>,
    /// Build timeout of this application (`build.timeout`; zero: the settings' default).
    pub timeout: Duration,
}

impl BuildPlan {
    /// Build arguments whose names say they hold a secret ([`looks_like_secret_name`]), with
    /// their values: the build's log is scrubbed of them, and the image history check rejects
    /// an image that keeps one (a build argument used by a `RUN` step is recorded in the
    /// image's history, which every puller of the image can read).
    ///
    /// [`looks_like_secret_name`]: crate::looks_like_secret_name
    pub fn secret_build_args(&self) -> Vec<(String, secrecy::SecretString)> {
        self.build_args
            .iter()
            .filter(|(name, _)| crate::scrub::looks_like_secret_name(name))
            .map(|(name, value)| (name.clone(), secrecy::SecretString::from(value.clone())))
            .collect()
    }
}

/// Decides the Dockerfile: the user's for the `docker` runtime, a generated one otherwise.
pub fn plan(
    manifest: &Manifest,
    checkout_dir: &Path,
    settings: &BuildSettings,
) -> Result<BuildPlan, BuildError> {
    let runtime = match &manifest.runtime {
        Runtime::Auto => crate::detect::resolve_runtime(manifest, checkout_dir)?,
        other => other.clone(),
    };
    let build = &manifest.build;
    let context_dir = inside_checkout(checkout_dir, &build.context, "build.context")?;
    if !context_dir.is_dir() {
        return Err(BuildError::plan(
            format!(
                "the build context '{}' is not a directory of the repository",
                build.context
            ),
            "set build.context to a directory that exists (default: .)",
        ));
    }

    let (dockerfile, dockerfile_path, generated, target) = match &runtime {
        Runtime::Docker => {
            let path = inside_checkout(checkout_dir, &build.dockerfile, "build.dockerfile")?;
            let text = std::fs::read_to_string(&path).map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    BuildError::plan(
                        format!(
                            "the Dockerfile '{}' does not exist in the repository",
                            build.dockerfile
                        ),
                        "add it or set build.dockerfile to its path",
                    )
                } else {
                    BuildError::io(&path, e)
                }
            })?;
            let rel = match path.strip_prefix(&context_dir) {
                Ok(r) => r.to_string_lossy().replace('\\', "/"),
                Err(_) => GENERATED_DOCKERFILE.to_string(),
            };
            (text, rel, false, build.target.clone())
        }
        Runtime::Auto => {
            return Err(BuildError::plan(
                "the runtime is still 'auto' after detection",
                "set runtime in hanzo.yaml",
            ));
        }
        _ => {
            let text = dockerfile::generate(&runtime, manifest, &context_dir, settings)?;
            (text, GENERATED_DOCKERFILE.to_string(), true, None)
        }
    };

    let base_images = from_images(&dockerfile);
    Ok(BuildPlan {
        runtime,
        dockerfile,
        generated,
        context_dir,
        dockerfile_path,
        build_args: build.args.clone(),
        target,
        network: build.network,
        ca_bundle: settings.ca_bundle.clone(),
        base_images,
        timeout: if build.timeout.is_zero() {
            settings.timeout
        } else {
            build.timeout
        },
    })
}

/// The images named by `FROM` lines (stage names excluded).
fn from_images(dockerfile: &str) -> Vec<String> {
    let mut stages = Vec::new();
    let mut images = Vec::new();
    for line in dockerfile.lines() {
        let mut words = line.split_whitespace();
        if !words.next().is_some_and(|w| w.eq_ignore_ascii_case("FROM")) {
            continue;
        }
        let mut image = None;
        let mut rest: Vec<&str> = Vec::new();
        for w in words {
            if w.starts_with("--") && image.is_none() {
                continue;
            }
            if image.is_none() {
                image = Some(w);
            } else {
                rest.push(w);
            }
        }
        if let Some(image) = image {
            let image = image.to_string();
            if !stages.contains(&image.to_ascii_lowercase()) && !images.contains(&image) {
                images.push(image);
            }
        }
        if rest.len() == 2 && rest[0].eq_ignore_ascii_case("AS") {
            stages.push(rest[1].to_ascii_lowercase());
        }
    }
    images
}

/// `rel` joined to the checkout; rejected when it leaves the checkout (lexically or through
/// a symbolic link).
fn inside_checkout(checkout: &Path, rel: &str, field: &str) -> Result<PathBuf, BuildError> {
    let p = Path::new(rel);
    let escapes = p.is_absolute()
        || p.components().any(|c| {
            matches!(
                c,
                Component::ParentDir | Component::Prefix(_) | Component::RootDir
            )
        });
    let outside = || {
        BuildError::plan(
            format!("{field} '{rel}' points outside the repository"),
            format!("set {field} to a path inside the repository"),
        )
    };
    if escapes {
        return Err(outside());
    }
    let joined = checkout.join(p);
    // Symbolic links: compare real paths when the target exists.
    if let (Ok(real), Ok(root)) = (
        std::fs::canonicalize(&joined),
        std::fs::canonicalize(checkout),
    ) {
        if !real.starts_with(&root) {
            return Err(outside());
        }
        let rel_real = real.strip_prefix(&root).map_err(|_| outside())?;
        return Ok(checkout.join(rel_real));
    }
    Ok(normalize(&joined))
}

fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_image_defaults_and_overrides() {
        let mut s = BuildSettings::default();
        assert_eq!(s.base_image("node-20"), "node:20-bookworm-slim");
        assert_eq!(s.base_image("node-18"), "node:18-bookworm-slim");
        assert_eq!(s.base_image("python-3.11"), "python:3.11-slim-bookworm");
        assert_eq!(s.base_image("go-1.23"), "golang:1.23-bookworm");
        assert_eq!(s.base_image("static"), "nginx:stable");
        let set = s.apply_env([
            ("HANZO_BASE_IMAGE_NODE_20", "node:18-bookworm-slim"),
            ("HANZO_BASE_IMAGE_PYTHON_3_12", "python:3.11-slim-bookworm"),
            ("HANZO_BASE_IMAGE_STATIC", "nginx:1.22-bookworm"),
            ("PATH", "/bin"),
        ]);
        assert_eq!(set, ["node-20", "python-3.12", "static"]);
        assert_eq!(s.base_image("node-20"), "node:18-bookworm-slim");
        assert_eq!(s.base_image("python-3.12"), "python:3.11-slim-bookworm");
    }

    #[test]
    fn from_images_skips_stages() {
        let df = "FROM --platform=linux/amd64 node:20 AS build\nRUN x\nFROM nginx:stable\nCOPY --from=build /a /b\nFROM build\n";
        assert_eq!(from_images(df), ["node:20", "nginx:stable"]);
    }

    #[test]
    fn paths_cannot_leave_the_checkout() {
        let d = tempfile::tempdir().unwrap();
        assert!(inside_checkout(d.path(), "../x", "build.context").is_err());
        assert!(inside_checkout(d.path(), "/etc", "build.context").is_err());
        std::os::unix::fs::symlink("/etc", d.path().join("link")).unwrap();
        assert!(inside_checkout(d.path(), "link", "build.context").is_err());
        std::fs::create_dir(d.path().join("app")).unwrap();
        assert_eq!(
            inside_checkout(d.path(), "./app", "build.context").unwrap(),
            d.path().join("app")
        );
        assert_eq!(
            inside_checkout(d.path(), ".", "build.context").unwrap(),
            d.path().to_path_buf()
        );
    }
}
