//! Source fetch: a shallow, single-branch `git clone` (HIP-14 "Build Pipeline", step 1).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use crate::BuildError;

/// A fetched source tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkout {
    pub dir: PathBuf,
    /// Full commit sha.
    pub commit: String,
    /// First line of the commit message.
    pub message: String,
}

/// How long listing the branches of a repository (for an error message) may take.
const LIST_BRANCHES_TIMEOUT: Duration = Duration::from_secs(15);

/// `git clone --depth 1 --single-branch --branch <branch> -- <repo> <dest>`.
///
/// `repo` is a URL (`https://…`, `ssh://…`, `git@host:path`, `file://…`) or a local path; local
/// paths are turned into `file://` URLs so that `--depth` applies. `git` never prompts
/// (`GIT_TERMINAL_PROMPT=0`) and is killed after `timeout`; a partial `dest` is removed on failure.
pub async fn fetch_source(
    repo: &str,
    branch: &str,
    dest: &Path,
    timeout: Duration,
) -> Result<Checkout, BuildError> {
    validate_branch(branch)?;
    let url = repo_url(repo)?;
    let dest_existed = dest.exists();

    let result = clone(repo, &url, branch, dest, timeout).await;
    if result.is_err() && !dest_existed {
        let _ = tokio::fs::remove_dir_all(dest).await;
    }
    result
}

async fn clone(
    repo: &str,
    url: &str,
    branch: &str,
    dest: &Path,
    timeout: Duration,
) -> Result<Checkout, BuildError> {
    let mut cmd = git();
    cmd.args([
        "clone",
        "--quiet",
        "--depth",
        "1",
        "--single-branch",
        "--no-tags",
    ])
    .arg("--branch")
    .arg(branch)
    .arg("--")
    .arg(url)
    .arg(dest);
    let output = match run(cmd, timeout).await {
        Ok(o) => o,
        Err(RunError::Timeout) => {
            return Err(BuildError::SourceTimeout {
                repo: repo.to_string(),
                timeout,
            });
        }
        Err(RunError::Spawn(e)) => {
            return Err(BuildError::Git {
                action: "clone".into(),
                detail: format!("git could not be started ({e})"),
            });
        }
    };
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(classify_clone_error(repo, url, branch, &stderr).await);
    }

    let commit = git_output(dest, &["rev-parse", "HEAD"]).await?;
    let message = git_output(dest, &["log", "-1", "--format=%s"]).await?;
    Ok(Checkout {
        dir: dest.to_path_buf(),
        commit,
        message,
    })
}

fn git() -> Command {
    let mut cmd = Command::new("git");
    cmd.env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "true")
        .env("SSH_ASKPASS", "true")
        .env("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

enum RunError {
    Timeout,
    Spawn(std::io::Error),
}

async fn run(mut cmd: Command, timeout: Duration) -> Result<std::process::Output, RunError> {
    let child = cmd.spawn().map_err(RunError::Spawn)?;
    // Dropping the future on timeout drops the child, which kills it (kill_on_drop).
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(output)) => Ok(output),
        Ok(Err(e)) => Err(RunError::Spawn(e)),
        Err(_) => Err(RunError::Timeout),
    }
}

async fn git_output(dir: &Path, args: &[&str]) -> Result<String, BuildError> {
    let mut cmd = git();
    cmd.arg("-C").arg(dir).args(args);
    let action = args.first().copied().unwrap_or("command").to_string();
    match run(cmd, Duration::from_secs(30)).await {
        Ok(out) if out.status.success() => {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        }
        Ok(out) => Err(BuildError::Git {
            action,
            detail: first_line(&String::from_utf8_lossy(&out.stderr)),
        }),
        Err(RunError::Timeout) => Err(BuildError::Git {
            action,
            detail: "it did not finish within 30s".into(),
        }),
        Err(RunError::Spawn(e)) => Err(BuildError::Git {
            action,
            detail: format!("git could not be started ({e})"),
        }),
    }
}

async fn classify_clone_error(repo: &str, url: &str, branch: &str, stderr: &str) -> BuildError {
    let lower = stderr.to_ascii_lowercase();
    if lower.contains("remote branch") && lower.contains("not found") {
        let available = list_branches(url).await;
        return BuildError::BranchNotFound {
            repo: repo.to_string(),
            branch: branch.to_string(),
            available,
        };
    }
    let detail = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            l.trim_start_matches("fatal: ")
                .trim_start_matches("error: ")
        })
        .collect::<Vec<_>>()
        .join(" ");
    let detail = if detail.is_empty() {
        "git exited without a message".to_string()
    } else {
        crate::scrub::scrub_text(&detail)
    };
    BuildError::SourceUnreachable {
        repo: crate::scrub::scrub_text(repo),
        detail,
    }
}

/// Branch names of a remote, for error messages (empty on any failure).
async fn list_branches(url: &str) -> Vec<String> {
    let mut cmd = git();
    cmd.args(["ls-remote", "--heads", "--"]).arg(url);
    match run(cmd, LIST_BRANCHES_TIMEOUT).await {
        Ok(out) if out.status.success() => {
            let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| l.split_whitespace().nth(1))
                .filter_map(|r| r.strip_prefix("refs/heads/"))
                .map(str::to_string)
                .collect();
            names.sort();
            names.truncate(20);
            names
        }
        _ => Vec::new(),
    }
}

fn first_line(s: &str) -> String {
    s.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no message")
        .trim()
        .to_string()
}

fn validate_branch(branch: &str) -> Result<(), BuildError> {
    let bad = branch.is_empty()
        || branch.starts_with('-')
        || branch.contains("..")
        || branch
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || "~^:?*[\\".contains(c));
    if bad {
        return Err(BuildError::InvalidInput(format!(
            "'{branch}' is not a valid branch name; use a name such as main or release/1.2"
        )));
    }
    Ok(())
}

/// The URL given to git: remote URLs as they are, local paths as `file://` URLs.
fn repo_url(repo: &str) -> Result<String, BuildError> {
    let repo = repo.trim();
    if repo.is_empty() || repo.starts_with('-') {
        return Err(BuildError::InvalidInput(format!(
            "'{repo}' is not a repository URL or path; use https://host/org/repo.git or a local path"
        )));
    }
    if let Some((scheme, _)) = repo.split_once("://") {
        let scheme = scheme.to_ascii_lowercase();
        return match scheme.as_str() {
            "https" | "http" | "ssh" | "git" | "file" => Ok(repo.to_string()),
            _ => Err(BuildError::InvalidInput(format!(
                "the repository scheme '{scheme}' is not supported; use https://, ssh://, git://, file:// or a local path"
            ))),
        };
    }
    // scp-like syntax: user@host:path
    if is_scp_like(repo) {
        return Ok(repo.to_string());
    }
    let path = Path::new(repo);
    let abs = std::fs::canonicalize(path).map_err(|_| BuildError::SourceUnreachable {
        repo: repo.to_string(),
        detail: "no such directory".into(),
    })?;
    let s = abs.to_string_lossy();
    Ok(format!("file://{}", percent_encode_path(&s)))
}

fn is_scp_like(repo: &str) -> bool {
    match repo.split_once(':') {
        Some((host, _)) => {
            !host.is_empty()
                && !host.contains('/')
                && host.contains('@')
                && !Path::new(repo).exists()
        }
        None => false,
    }
}

fn percent_encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(dir: &Path, args: &[&str]) {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn repo_with_commits() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        sh(p, &["init", "-q", "-b", "main"]);
        std::fs::write(p.join("a.txt"), "one").unwrap();
        sh(p, &["add", "."]);
        sh(p, &["commit", "-q", "-m", "first commit"]);
        std::fs::write(p.join("a.txt"), "two").unwrap();
        sh(p, &["commit", "-q", "-am", "second commit\n\nwith a body"]);
        sh(p, &["branch", "release"]);
        dir
    }

    #[tokio::test]
    async fn clones_a_local_repository_shallowly() {
        let repo = repo_with_commits();
        let dest = tempfile::tempdir().unwrap();
        let dest = dest.path().join("src");
        let c = fetch_source(
            repo.path().to_str().unwrap(),
            "main",
            &dest,
            Duration::from_secs(30),
        )
        .await
        .unwrap();
        assert_eq!(c.commit.len(), 40);
        assert_eq!(c.message, "second commit");
        assert_eq!(std::fs::read_to_string(dest.join("a.txt")).unwrap(), "two");
        let count = std::process::Command::new("git")
            .args(["rev-list", "--count", "HEAD"])
            .current_dir(&dest)
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&count.stdout).trim(),
            "1",
            "clone is shallow"
        );
    }

    #[tokio::test]
    async fn unknown_branch_lists_the_branches() {
        let repo = repo_with_commits();
        let dest = tempfile::tempdir().unwrap();
        let dest = dest.path().join("src");
        let err = fetch_source(
            repo.path().to_str().unwrap(),
            "nope",
            &dest,
            Duration::from_secs(30),
        )
        .await
        .unwrap_err();
        match &err {
            BuildError::BranchNotFound { available, .. } => {
                assert_eq!(available, &vec!["main".to_string(), "release".to_string()])
            }
            other => panic!("unexpected {other:?}"),
        }
        let msg = err.to_string();
        assert!(
            msg.contains("'nope'") && msg.contains("main, release"),
            "{msg}"
        );
        assert!(!dest.exists(), "partial checkout removed");
    }

    #[tokio::test]
    async fn missing_repository_is_unreachable() {
        let dest = tempfile::tempdir().unwrap();
        let err = fetch_source(
            "/nonexistent/repo",
            "main",
            &dest.path().join("src"),
            Duration::from_secs(30),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(err, BuildError::SourceUnreachable { .. }),
            "{err:?}"
        );

        // A directory that is not a repository.
        let empty = tempfile::tempdir().unwrap();
        let err = fetch_source(
            empty.path().to_str().unwrap(),
            "main",
            &dest.path().join("src2"),
            Duration::from_secs(30),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(err, BuildError::SourceUnreachable { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("check the URL"), "{err}");
    }

    #[tokio::test]
    async fn unreachable_remote_fails_fast_and_scrubs_credentials() {
        let dest = tempfile::tempdir().unwrap();
        // Nothing listens on port 9 of loopback: connection refused.
        let err = fetch_source(
            "http://user:hunter2secret@127.0.0.1:9/org/repo.git",
            "main",
            &dest.path().join("src"),
            Duration::from_secs(30),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(err, BuildError::SourceUnreachable { .. }),
            "{err:?}"
        );
        assert!(!err.to_string().contains("hunter2secret"), "{err}");
    }

    #[tokio::test]
    async fn timeout_kills_git() {
        // A server that accepts and never answers.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let dest = tempfile::tempdir().unwrap();
        let started = std::time::Instant::now();
        let err = fetch_source(
            &format!("http://127.0.0.1:{port}/r.git"),
            "main",
            &dest.path().join("src"),
            Duration::from_millis(700),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, BuildError::SourceTimeout { .. }), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(10));
        drop(listener);
    }

    #[test]
    fn rejects_option_like_inputs() {
        assert!(matches!(
            repo_url("--upload-pack=x"),
            Err(BuildError::InvalidInput(_))
        ));
        assert!(repo_url("ext::sh -c x").is_err());
        assert!(validate_branch("-x").is_err());
        assert!(validate_branch("a b").is_err());
        assert!(validate_branch("release/1.2").is_ok());
        assert_eq!(
            repo_url("git@github.com:org/r.git").unwrap(),
            "git@github.com:org/r.git"
        );
    }
}
