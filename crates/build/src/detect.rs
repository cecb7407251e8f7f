//! Runtime detection for `runtime: auto`: `hanzo-manifest`'s detection table (HIP-14
//! "Application Manifest"), with its errors carried as [`BuildError::Detect`].

use std::path::Path;

use hanzo_manifest::{Manifest, Runtime};

use crate::BuildError;

/// The runtime to build: the manifest's, or the detected one for `auto`.
pub fn resolve_runtime(manifest: &Manifest, checkout: &Path) -> Result<Runtime, BuildError> {
    Ok(hanzo_manifest::resolve_runtime(manifest, checkout)?)
}
