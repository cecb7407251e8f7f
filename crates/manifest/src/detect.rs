//! Runtime detection (HIP-14 "Application Manifest", the detection table).
//!
//! Order, first match wins: `Dockerfile` → docker; `package.json` → node
//! (`engines.node` picks the version); `pyproject.toml` or `requirements.txt` →
//! python (`.python-version`, else `requires-python`); `go.mod` → go (its `go`
//! directive); `Cargo.toml` → rust (`rust-toolchain` or `rust-toolchain.toml`).

use crate::types::{Manifest, Runtime};
use crate::validate::{DEFAULT_GO, DEFAULT_NODE, DEFAULT_PYTHON, DEFAULT_RUST};
use std::path::{Path, PathBuf};

/// Files detection reads are small; anything larger is not a marker file we understand.
const MAX_MARKER_BYTES: u64 = 1024 * 1024;

/// Why the runtime could not be determined.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error(
        "cannot detect the runtime of {dir}: none of Dockerfile, package.json, pyproject.toml, requirements.txt, go.mod or Cargo.toml is there — add one of them, or set `runtime:` in hanzo.yaml (auto | node-20 | node-22 | python-3.12 | go-1.22 | rust-1.78 | docker)"
    )]
    NothingDetected { dir: PathBuf },
    #[error(
        "runtime is docker but {path} does not exist — add the Dockerfile, or point `build.dockerfile` at it"
    )]
    DockerfileMissing { path: PathBuf },
    #[error("cannot read {path}: {source} — check that the file is readable")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} is not valid JSON ({source}) — fix the file so that the Node version can be read from engines.node"
    )]
    InvalidPackageJson {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path} is larger than 1 MiB — runtime detection reads only small marker files")]
    TooLarge { path: PathBuf },
}

/// Detects the runtime of the repository at `dir` (Dockerfile first).
pub fn detect_runtime(dir: &Path) -> Result<Runtime, DetectError> {
    detect_with_dockerfile(dir, Path::new("Dockerfile"))
}

/// An explicit `runtime:` wins; `auto` detects. For docker, the Dockerfile is
/// `manifest.build.dockerfile` and must exist. With `auto`, that Dockerfile is looked
/// for first; language files are then looked for in `build.context` (when it is not
/// the root) and then at the repository root.
pub fn resolve_runtime(manifest: &Manifest, dir: &Path) -> Result<Runtime, DetectError> {
    let dockerfile = Path::new(&manifest.build.dockerfile);
    match &manifest.runtime {
        Runtime::Auto => {
            if is_file(&dir.join(dockerfile))? {
                return Ok(Runtime::Docker);
            }
            let context = manifest.build.context.trim_end_matches('/');
            if !context.is_empty()
                && context != "."
                && let Some(rt) = detect_language(&dir.join(context))?
            {
                return Ok(rt);
            }
            detect_language(dir)?.ok_or_else(|| DetectError::NothingDetected {
                dir: dir.to_path_buf(),
            })
        }
        Runtime::Docker => {
            let path = dir.join(dockerfile);
            if is_file(&path)? {
                Ok(Runtime::Docker)
            } else {
                Err(DetectError::DockerfileMissing { path })
            }
        }
        explicit => Ok(explicit.clone()),
    }
}

fn detect_with_dockerfile(dir: &Path, dockerfile: &Path) -> Result<Runtime, DetectError> {
    if is_file(&dir.join(dockerfile))? {
        return Ok(Runtime::Docker);
    }
    detect_language(dir)?.ok_or_else(|| DetectError::NothingDetected {
        dir: dir.to_path_buf(),
    })
}

/// The language runtime of `dir`, in the table's order (node, python, go, rust).
fn detect_language(dir: &Path) -> Result<Option<Runtime>, DetectError> {
    let package_json = dir.join("package.json");
    if is_file(&package_json)? {
        return Ok(Some(Runtime::Node {
            version: node_version(&package_json)?,
        }));
    }
    let pyproject = dir.join("pyproject.toml");
    let has_pyproject = is_file(&pyproject)?;
    if has_pyproject || is_file(&dir.join("requirements.txt"))? {
        return Ok(Some(Runtime::Python {
            version: python_version(dir, has_pyproject.then_some(&pyproject))?,
        }));
    }
    let go_mod = dir.join("go.mod");
    if is_file(&go_mod)? {
        return Ok(Some(Runtime::Go {
            version: go_version(&go_mod)?,
        }));
    }
    if is_file(&dir.join("Cargo.toml"))? {
        return Ok(Some(Runtime::Rust {
            version: rust_version(dir)?,
        }));
    }
    Ok(None)
}

fn is_file(path: &Path) -> Result<bool, DetectError> {
    match std::fs::metadata(path) {
        Ok(m) => Ok(m.is_file()),
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                || e.kind() == std::io::ErrorKind::NotADirectory =>
        {
            Ok(false)
        }
        Err(source) => Err(DetectError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn read_small(path: &Path) -> Result<Option<String>, DetectError> {
    if !is_file(path)? {
        return Ok(None);
    }
    let io = |source| DetectError::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.len() > MAX_MARKER_BYTES {
        return Err(DetectError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    let bytes = std::fs::read(path).map_err(io)?;
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

/// The leading `major` (node) or `major.minor` (others) of the first version in `s`.
fn leading_version(s: &str, parts: usize) -> Option<String> {
    let start = s.find(|c: char| c.is_ascii_digit())?;
    let rest = &s[start..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let nums: Vec<&str> = rest[..end]
        .split('.')
        .filter(|p| !p.is_empty())
        .take(parts)
        .collect();
    if nums.len() < parts.min(2) && parts > 1 {
        return None;
    }
    Some(nums.join("."))
}

fn node_version(path: &Path) -> Result<String, DetectError> {
    let text = read_small(path)?.unwrap_or_default();
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|source| DetectError::InvalidPackageJson {
            path: path.to_path_buf(),
            source,
        })?;
    let engines = json
        .get("engines")
        .and_then(|e| e.get("node"))
        .and_then(|n| n.as_str());
    Ok(engines
        .and_then(|r| leading_version(r, 1))
        .unwrap_or_else(|| DEFAULT_NODE.to_string()))
}

fn python_version(dir: &Path, pyproject: Option<&PathBuf>) -> Result<String, DetectError> {
    if let Some(v) = read_small(&dir.join(".python-version"))?
        && let Some(v) = v
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .and_then(|l| leading_version(l, 2))
    {
        return Ok(v);
    }
    if let Some(p) = pyproject {
        let text = read_small(p)?.unwrap_or_default();
        let requires = text.lines().map(str::trim).find_map(|l| {
            let rest = l
                .strip_prefix("requires-python")?
                .trim_start()
                .strip_prefix('=')?;
            leading_version(rest, 2)
        });
        if let Some(v) = requires {
            return Ok(v);
        }
    }
    Ok(DEFAULT_PYTHON.to_string())
}

fn go_version(go_mod: &Path) -> Result<String, DetectError> {
    let text = read_small(go_mod)?.unwrap_or_default();
    let v = text.lines().map(str::trim).find_map(|l| {
        let rest = l.strip_prefix("go")?;
        if !rest.starts_with([' ', '\t']) {
            return None;
        }
        leading_version(rest.trim(), 2)
    });
    Ok(v.unwrap_or_else(|| DEFAULT_GO.to_string()))
}

fn rust_version(dir: &Path) -> Result<String, DetectError> {
    if let Some(text) = read_small(&dir.join("rust-toolchain.toml"))? {
        let channel = text.lines().map(str::trim).find_map(|l| {
            let rest = l.strip_prefix("channel")?.trim_start().strip_prefix('=')?;
            Some(rest.trim().trim_matches(['"', '\'']).to_string())
        });
        return Ok(channel
            .and_then(|c| channel_version(&c))
            .unwrap_or_else(|| DEFAULT_RUST.to_string()));
    }
    if let Some(text) = read_small(&dir.join("rust-toolchain"))? {
        let first = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("");
        // The legacy file holds a bare channel; newer ones may be TOML without the extension.
        let channel = if first.starts_with('[') {
            text.lines().map(str::trim).find_map(|l| {
                let rest = l.strip_prefix("channel")?.trim_start().strip_prefix('=')?;
                Some(rest.trim().trim_matches(['"', '\'']).to_string())
            })
        } else {
            Some(first.to_string())
        };
        if let Some(v) = channel.and_then(|c| channel_version(&c)) {
            return Ok(v);
        }
    }
    Ok(DEFAULT_RUST.to_string())
}

/// `1.78.0` → `1.78`; named channels (`stable`, `nightly-…`) → none (the default applies).
fn channel_version(channel: &str) -> Option<String> {
    if channel.starts_with(|c: char| c.is_ascii_digit()) {
        leading_version(channel, 2)
    } else {
        None
    }
}
