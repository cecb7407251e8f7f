//! `hanzo.yaml`, the application manifest (HIP-14 "Application Manifest").
//!
//! [`Manifest`] is the *resolved* manifest: every default filled in, every unit
//! converted, every rule checked. Build and deploy code use it as it is and never
//! re-parse YAML.
//!
//! - [`parse`] / [`load`]: YAML → [`Manifest`], or [`Diagnostics`] listing every problem
//!   (`hanzo.yaml:LINE:COL: what is wrong — how to fix it`, with the line and a caret).
//! - [`detect_runtime`] / [`resolve_runtime`]: the spec's detection table, Dockerfile first.
//! - [`schema`]: JSON Schema (draft 2020-12) of what an author writes, for editors.
//! - [`explain`]: a resolved manifest as YAML with every default written out.
//!
//! Hostile input is bounded: at most [`MAX_MANIFEST_BYTES`] bytes, nesting depth 32,
//! and budgets on nodes, aliases and alias expansion; parsing never panics.

mod detect;
mod diag;
mod domain;
mod explain;
mod node;
pub mod raw;
mod types;
mod units;
mod validate;

pub use detect::{DetectError, detect_runtime, resolve_runtime};
pub use diag::{Diagnostic, Diagnostics};
pub use domain::{DomainError, parse_domain};
pub use explain::{explain, to_file};
pub use types::*;

use std::path::{Path, PathBuf};

/// The largest manifest accepted, in bytes.
pub const MAX_MANIFEST_BYTES: usize = node::MAX_BYTES;

/// File names looked up by [`load`], in order.
pub const FILE_NAMES: [&str; 2] = ["hanzo.yaml", "hanzo.yml"];

/// Parses, validates and fills defaults. Reports every problem in one pass.
pub fn parse(text: &str, file_name: &str) -> Result<Manifest, Diagnostics> {
    let mut sink = diag::Sink::new(file_name, text);
    if text.len() > MAX_MANIFEST_BYTES {
        let pos = node::Pos {
            line: 1,
            column: 1,
            byte_offset: None,
            byte_len: 0,
        };
        sink.report(
            pos,
            format!(
                "the manifest is {} bytes, more than the limit of {} KiB",
                text.len(),
                MAX_MANIFEST_BYTES / 1024
            ),
            "keep hanzo.yaml to build and deploy settings; move data elsewhere",
        );
        return Err(sink.finish());
    }
    let root: node::Node = match serde_saphyr::from_str_with_options(text, node::options()) {
        Ok(root) => root,
        Err(e) => {
            let (pos, message, help) = yaml_error(&e);
            sink.report(pos, message, help);
            return Err(sink.finish());
        }
    };
    validate::resolve(&root, sink)
}

/// Turns a parser error into (position, what is wrong, how to fix it).
fn yaml_error(e: &serde_saphyr::Error) -> (node::Pos, String, String) {
    let e = e.without_snippet();
    let pos = e
        .location()
        .map(|l| node::Pos::from_location(&l))
        .unwrap_or_default();
    let rendered = e.to_string();
    // The parser appends " at line L, column C"; we show the position in front instead.
    let msg = match rendered.rfind(" at line ") {
        Some(i) if rendered[i..].contains("column") => rendered[..i].to_string(),
        _ => rendered,
    };
    let msg = msg.trim().trim_end_matches('.').to_string();
    let lower = msg.to_ascii_lowercase();
    if lower.contains("budget") || lower.contains("alias replay") || lower.contains("limit") {
        // Keep the parser's own words short: the first clause, without positions.
        let detail = msg
            .split(" at line ")
            .next()
            .unwrap_or(&msg)
            .trim()
            .to_string();
        let what = if lower.contains("depth")
            || lower.contains("recursion")
            || lower.contains("nesting")
        {
            format!(
                "the manifest is nested deeper than {} levels",
                node::MAX_DEPTH
            )
        } else if lower.contains("alias") || lower.contains("anchor") || lower.contains("replay") {
            "the manifest expands too many YAML aliases".to_string()
        } else if lower.contains("documents") {
            "the file holds more than one YAML document".to_string()
        } else {
            "the manifest is too large or too complex".to_string()
        };
        let help = if lower.contains("documents") {
            "keep one document: remove the `---` separators"
        } else {
            "write the settings out plainly; hanzo.yaml needs no deep nesting or alias expansion"
        };
        return (pos, format!("{what} ({detail})"), help.to_string());
    }
    if let Some(rest) = msg.strip_prefix("duplicate mapping key: ") {
        let key = rest.split(',').next().unwrap_or(rest).trim();
        return (
            pos,
            format!("the key `{key}` appears twice in the same mapping"),
            "keep one of the two".to_string(),
        );
    }
    if lower.contains("tab") {
        return (
            pos,
            format!("invalid YAML: {msg}"),
            "indent with spaces, not tabs".to_string(),
        );
    }
    (
        pos,
        format!("invalid YAML: {msg}"),
        "fix the YAML syntax at this place (indentation, quotes, brackets)".to_string(),
    )
}

/// Why [`load`] failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("no hanzo.yaml in {} — add one at the repository root (see `hanzo manifest schema`)", dir.display())]
    Missing { dir: PathBuf },
    #[error("cannot read {path}: {source} — check that the file exists and is readable")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not UTF-8 text — save it as UTF-8")]
    NotUtf8 { path: PathBuf },
    #[error("{path} is larger than {} KiB — keep hanzo.yaml to build and deploy settings", MAX_MANIFEST_BYTES / 1024)]
    TooLarge { path: PathBuf },
    /// The manifest was read but is not valid; every problem is listed.
    #[error("{0}")]
    Invalid(Diagnostics),
}

impl LoadError {
    /// The diagnostics, when the file was read but is invalid.
    pub fn diagnostics(&self) -> Option<&Diagnostics> {
        match self {
            LoadError::Invalid(d) => Some(d),
            _ => None,
        }
    }
}

/// The manifest file of `dir` (`hanzo.yaml`, else `hanzo.yml`), if any.
pub fn find(dir: &Path) -> Option<PathBuf> {
    FILE_NAMES.iter().map(|n| dir.join(n)).find(|p| p.is_file())
}

/// Reads `<dir>/hanzo.yaml` (or `hanzo.yml`) and [`parse`]s it.
pub fn load(dir: &Path) -> Result<Manifest, LoadError> {
    let path = find(dir).ok_or_else(|| LoadError::Missing {
        dir: dir.to_path_buf(),
    })?;
    load_file(&path)
}

/// Reads and [`parse`]s one manifest file; diagnostics name the file by its file name.
pub fn load_file(path: &Path) -> Result<Manifest, LoadError> {
    use std::io::Read;
    let io = |source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    file.take(MAX_MANIFEST_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() > MAX_MANIFEST_BYTES {
        return Err(LoadError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    let text = String::from_utf8(bytes).map_err(|_| LoadError::NotUtf8 {
        path: path.to_path_buf(),
    })?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "hanzo.yaml".into());
    parse(&text, &name).map_err(LoadError::Invalid)
}

/// JSON Schema (draft 2020-12) of `hanzo.yaml` as an author writes it, generated
/// from [`raw::ManifestFile`].
pub fn schema() -> serde_json::Value {
    let generator = schemars::generate::SchemaSettings::draft2020_12().into_generator();
    let mut schema = generator.into_root_schema_for::<raw::ManifestFile>();
    schema.insert(
        "$id".to_string(),
        "https://hanzo.ai/schemas/hanzo.yaml.json".into(),
    );
    schema.to_value()
}
