//! `hanzo.yaml`, the application manifest (HIP-14 "Application Manifest").
//!
//! [`Manifest`] is the *resolved* manifest: every default filled in, every unit
//! converted, every rule checked. Build and deploy code use it as it is and never
//! re-parse YAML.

mod types;
pub use types::*;
