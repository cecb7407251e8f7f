use std::path::PathBuf;
use std::time::Duration;

/// Everything that can stop a build. Each message is one sentence naming the cause and the fix;
/// none of them ever contains a secret value (build output inside them is scrubbed).
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(
        "the repository {repo} could not be reached or does not exist ({detail}); check the URL or path and that the platform may read it"
    )]
    SourceUnreachable { repo: String, detail: String },

    #[error("the branch '{branch}' does not exist in {repo}{}; push the branch or deploy one that exists", available_list(.available))]
    BranchNotFound {
        repo: String,
        branch: String,
        /// Branches the repository has (empty when they could not be listed).
        available: Vec<String>,
    },

    #[error(
        "cloning {repo} did not finish within {}s; check that the repository is reachable and not too large, or raise the clone timeout", .timeout.as_secs()
    )]
    SourceTimeout { repo: String, timeout: Duration },

    #[error(
        "git {action} failed: {detail}; check that git is installed and the repository is valid"
    )]
    Git { action: String, detail: String },

    #[error("{0}")]
    InvalidInput(String),

    #[error(transparent)]
    Detect(#[from] hanzo_manifest::DetectError),

    #[error("{message}; {fix}")]
    Plan { message: String, fix: String },

    #[error("reading {} failed: {source}; check that the file exists and is readable", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "the Docker Engine refused to {action}: {source}; check that dockerd is running and reachable"
    )]
    Docker {
        action: String,
        #[source]
        source: bollard::errors::Error,
    },

    #[error("the build failed{}: {tail} — fix the Dockerfile/build command and deploy again", step_text(.step))]
    BuildFailed {
        /// The last `Step N/M : …` line seen, if any.
        step: Option<String>,
        /// The last lines of the scrubbed build log (and the daemon's error message).
        tail: String,
    },

    #[error(
        "the build did not finish within {} and was stopped; make the build faster or raise build.timeout in hanzo.yaml", timeout_text(.timeout)
    )]
    Timeout { timeout: Duration },

    #[error("the build was cancelled")]
    Cancelled,

    #[error(
        "the image keeps the secret {variable} in its {kind} instruction of the image history; pass it at run time through env (secret: true) instead of ENV/ARG"
    )]
    SecretInImage { variable: String, kind: String },

    #[error("pushing {tag} failed: {detail}; check the registry address and credentials")]
    Push { tag: String, detail: String },
}

fn available_list(available: &[String]) -> String {
    if available.is_empty() {
        String::new()
    } else {
        format!(" (branches: {})", available.join(", "))
    }
}

fn step_text(step: &Option<String>) -> String {
    match step {
        Some(s) => format!(" at {s}"),
        None => String::new(),
    }
}

/// `15 minutes`, `90 seconds`, `1 minute`.
fn timeout_text(timeout: &Duration) -> String {
    let secs = timeout.as_secs();
    let plural = |n: u64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    if secs >= 60 && secs.is_multiple_of(60) {
        plural(secs / 60, "minute")
    } else if secs >= 1 {
        plural(secs, "second")
    } else {
        format!("{} ms", timeout.as_millis())
    }
}

impl BuildError {
    pub(crate) fn docker(action: impl Into<String>, source: bollard::errors::Error) -> Self {
        BuildError::Docker {
            action: action.into(),
            source,
        }
    }

    pub(crate) fn plan(message: impl Into<String>, fix: impl Into<String>) -> Self {
        BuildError::Plan {
            message: message.into(),
            fix: fix.into(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        BuildError::Io {
            path: path.into(),
            source,
        }
    }

    /// A short machine-readable reason, for deployment records and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            BuildError::SourceUnreachable { .. } => "source_unreachable",
            BuildError::BranchNotFound { .. } => "branch_not_found",
            BuildError::SourceTimeout { .. } => "source_timeout",
            BuildError::Git { .. } => "git",
            BuildError::InvalidInput(_) => "invalid_input",
            BuildError::Detect(_) => "detect",
            BuildError::Plan { .. } => "plan",
            BuildError::Io { .. } => "io",
            BuildError::Docker { .. } => "docker",
            BuildError::BuildFailed { .. } => "build_failed",
            BuildError::Timeout { .. } => "timeout",
            BuildError::Cancelled => "cancelled",
            BuildError::SecretInImage { .. } => "secret_in_image",
            BuildError::Push { .. } => "push",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_messages_read_well() {
        let msg = |secs| {
            BuildError::Timeout {
                timeout: Duration::from_secs(secs),
            }
            .to_string()
        };
        assert_eq!(
            msg(900),
            "the build did not finish within 15 minutes and was stopped; make the build faster or raise build.timeout in hanzo.yaml"
        );
        assert!(msg(5).contains("within 5 seconds"));
        assert!(msg(60).contains("within 1 minute and"));
        assert!(msg(90).contains("within 90 seconds"));
    }
}
