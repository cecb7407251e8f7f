//! Build pipeline: source → image (HIP-14 "Build Pipeline" and "Security").
//!
//! - [`fetch_source`]: shallow, single-branch `git clone`;
//! - [`plan`]: the Dockerfile to build (the user's, or one generated per runtime) — pure;
//! - [`Builder`]: `docker build` with limits, timeout, cancellation and scrubbed live logs,
//!   `push` to a registry, and the image-history check for leaked secrets;
//! - [`Scrubber`]: the streaming secret scrubber used for every log line.

mod context;
mod detect;
mod docker;
mod dockerfile;
mod error;
mod plan;
#[cfg(test)]
mod plan_tests;
mod scrub;
mod source;

pub use context::{DockerIgnore, context_files};
pub use detect::resolve_runtime;
pub use docker::{BuildOptions, Builder, RegistryAuth, TAIL_LINES, registry_of, split_tag};
pub use error::BuildError;
pub use plan::{
    BuildPlan, BuildSettings, CONTEXT_CA_BUNDLE, DEFAULT_MEMORY_BYTES, DEFAULT_NANO_CPUS,
    DEFAULT_TIMEOUT, GENERATED_DOCKERFILE, env_suffix_to_key, plan,
};
pub use scrub::{
    MIN_SECRET_LEN, REDACTED, Scrubber, looks_like_secret_name, scrub_secrets, scrub_text,
};
pub use source::{Checkout, fetch_source};

pub use hanzo_manifest::{BuildNetwork, Manifest, Runtime};
pub use secrecy::SecretString;
