//! Image build, push and history check against the Docker Engine (classic builder, API 1.41).

use std::collections::{HashMap, VecDeque};

use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::errors::Error as DockerError;
use bollard::query_parameters::{BuildImageOptionsBuilder, PushImageOptionsBuilder};
use futures_util::StreamExt;
use hanzo_manifest::BuildNetwork;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::BuildError;
use crate::context::{Extra, stream_tar};
use crate::plan::{BuildPlan, BuildSettings, CONTEXT_CA_BUNDLE};
use crate::scrub::{MIN_SECRET_LEN, Scrubber};

/// Lines of build output kept for the error of a failed build.
pub const TAIL_LINES: usize = 20;

/// Credentials for a registry.
#[derive(Clone)]
pub struct RegistryAuth {
    pub username: String,
    pub password: SecretString,
}

impl std::fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryAuth")
            .field("username", &self.username)
            .field("password", &"[REDACTED]")
            .finish()
    }
}

/// Per-build choices that are not part of the plan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildOptions {
    /// Run every step again, ignoring the layer cache (a clean build; the benchmark's cold run).
    pub no_cache: bool,
    /// Images whose layers serve as the cache (`--cache-from`). With the classic builder a
    /// step is then reused only when it is in the history of one of these images, so set it
    /// only for images that came from a registry (their layers have no local build history);
    /// leave it empty to use the engine's local layer cache.
    pub cache_from: Vec<String>,
}

/// Builds and pushes images with the Docker Engine.
#[derive(Debug, Clone)]
pub struct Builder {
    docker: Docker,
    settings: BuildSettings,
}

impl Builder {
    pub fn new(docker: Docker, settings: BuildSettings) -> Self {
        Builder { docker, settings }
    }

    pub fn settings(&self) -> &BuildSettings {
        &self.settings
    }

    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// `docker build` of the plan with all `tags` (classic builder, `rm`, `forcerm`, memory and
    /// CPU limits, no network for `build.network: none`). Every output line, scrubbed, goes to
    /// `logs` as it arrives (one line per message, without its newline). `cancel` stops the
    /// build; so does the timeout (the plan's, else the settings'). Returns the image id
    /// (`sha256:…`).
    pub async fn build(
        &self,
        plan: &BuildPlan,
        tags: &[String],
        secrets: &[SecretString],
        logs: mpsc::Sender<String>,
        cancel: CancellationToken,
    ) -> Result<String, BuildError> {
        self.build_with(plan, tags, secrets, logs, cancel, &BuildOptions::default())
            .await
    }

    /// [`build`](Builder::build) with per-build [`BuildOptions`] (cache sources, no cache).
    pub async fn build_with(
        &self,
        plan: &BuildPlan,
        tags: &[String],
        secrets: &[SecretString],
        logs: mpsc::Sender<String>,
        cancel: CancellationToken,
        build_options: &BuildOptions,
    ) -> Result<String, BuildError> {
        for tag in tags {
            validate_tag(tag)?;
        }
        let timeout = if plan.timeout.is_zero() {
            self.settings.timeout
        } else {
            plan.timeout
        };

        let mut extra: Extra = vec![(
            plan.dockerfile_path.clone(),
            plan.dockerfile.clone().into_bytes(),
        )];
        if let Some(ca) = &plan.ca_bundle {
            let data = tokio::fs::read(ca).await.map_err(|e| BuildError::Io {
                path: ca.clone(),
                source: e,
            })?;
            extra.push((CONTEXT_CA_BUNDLE.to_string(), data));
        }

        let mut options = BuildImageOptionsBuilder::default()
            .dockerfile(&plan.dockerfile_path)
            .rm(true)
            .forcerm(true)
            .cpuperiod(100_000)
            .cpuquota(cpu_quota(self.settings.nano_cpus))
            .nocache(build_options.no_cache);
        if !build_options.cache_from.is_empty() {
            options = options.cachefrom(&build_options.cache_from);
        }
        if let Some(first) = tags.first() {
            options = options.t(first);
        }
        if !plan.build_args.is_empty() {
            let args: HashMap<String, String> = plan.build_args.clone().into_iter().collect();
            options = options.buildargs(&args);
        }
        if let Some(target) = &plan.target {
            options = options.target(target);
        }
        if plan.network == BuildNetwork::None {
            options = options.networkmode("none");
        }

        // bollard types `memory` as i32 (2 GiB at most) and takes one tag: the rest of the query
        // is appended to the /build request itself.
        let mut extra_query = Vec::new();
        if self.settings.memory_bytes > 0 {
            extra_query.push(format!("memory={}", self.settings.memory_bytes));
            extra_query.push(format!("memswap={}", self.settings.memory_bytes));
        }
        for tag in tags.iter().skip(1) {
            extra_query.push(format!("t={}", query_escape(tag)));
        }
        let docker = with_build_query(self.docker.clone(), extra_query.join("&"));

        let (rx, tar_task) = stream_tar(plan.context_dir.clone(), extra);
        let body =
            futures_util::stream::unfold(
                rx,
                |mut rx| async move { rx.recv().await.map(|b| (b, rx)) },
            );
        let mut stream =
            docker.build_image(options.build(), None, Some(bollard::body_stream(body)));

        let started = tokio::time::Instant::now();
        let mut out = Output::new(secrets, logs, cancel.clone(), started + timeout);
        let deadline = tokio::time::sleep_until(started + timeout);
        tokio::pin!(deadline);
        let mut image_id: Option<String> = None;
        let mut failure: Option<String> = None;
        let mut stopped: Option<BuildError> = None;
        loop {
            tokio::select! {
                biased;
                _ = cancel.cancelled() => { stopped = Some(BuildError::Cancelled); break; }
                _ = &mut deadline => { stopped = Some(BuildError::Timeout { timeout }); break; }
                item = stream.next() => match item {
                    None => break,
                    Some(Ok(info)) => {
                        if let Some(text) = info.stream.as_deref() {
                            out.push(text).await;
                        }
                        if let Some(status) = info.status.as_deref() {
                            let line = match info.id.as_deref() {
                                Some(id) => format!("{id}: {status}\n"),
                                None => format!("{status}\n"),
                            };
                            if info.progress_detail.as_ref().is_none_or(|p| p.total.is_none()) {
                                out.push(&line).await;
                            }
                        }
                        if let Some(id) = info.aux.and_then(|a| a.id) {
                            image_id = Some(id);
                        }
                    }
                    Some(Err(DockerError::DockerStreamError { error })) => { failure = Some(error); break; }
                    Some(Err(DockerError::DockerResponseServerError { message, .. })) => { failure = Some(message); break; }
                    Some(Err(e)) => {
                        drop(stream);
                        out.finish().await;
                        return Err(BuildError::docker("build the image", e));
                    }
                },
            }
        }
        // Dropping the response stream closes the connection: the daemon cancels the build and
        // (forcerm) removes its intermediate containers.
        drop(stream);
        out.finish().await;
        let tar_result = tar_task.await;

        if let Some(err) = stopped {
            return Err(err);
        }
        // An unreadable context file explains a failure better than the daemon's message.
        if let Ok(Err(e)) = tar_result
            && !is_broken_pipe(&e)
        {
            return Err(e);
        }
        if let Some(message) = failure {
            let message = scrub_with(secrets, &message);
            let mut tail: Vec<String> = out.tail.into_iter().collect();
            if !tail.iter().any(|l| l.contains(message.trim())) {
                tail.push(message.trim().to_string());
            }
            if message.trim_end().ends_with("non-zero code: 137") && self.settings.memory_bytes > 0
            {
                tail.push(format!(
                    "(the step was killed: most likely it used more than the build memory limit of {} MiB)",
                    self.settings.memory_bytes / (1024 * 1024)
                ));
            }
            return Err(BuildError::BuildFailed {
                step: out.step,
                tail: tail.join("\n"),
            });
        }
        match image_id {
            Some(id) => Ok(id),
            None => match tags.first() {
                Some(tag) => self
                    .docker
                    .inspect_image(tag)
                    .await
                    .map_err(|e| BuildError::docker("inspect the built image", e))?
                    .id
                    .ok_or_else(|| BuildError::BuildFailed {
                        step: out.step,
                        tail: "the Docker Engine reported no image id".into(),
                    }),
                None => Err(BuildError::BuildFailed {
                    step: out.step,
                    tail: "the Docker Engine reported no image id".into(),
                }),
            },
        }
    }

    /// Pushes `tag` to the registry named in it, with optional credentials; returns the
    /// manifest digest (`sha256:…`). Progress lines go to `logs`.
    pub async fn push(
        &self,
        tag: &str,
        auth: Option<&RegistryAuth>,
        logs: mpsc::Sender<String>,
    ) -> Result<String, BuildError> {
        validate_tag(tag)?;
        let (repo, version) = split_tag(tag);
        let credentials = auth.map(|a| DockerCredentials {
            username: Some(a.username.clone()),
            password: Some(a.password.expose_secret().to_string()),
            serveraddress: Some(registry_of(repo).to_string()),
            ..Default::default()
        });
        let options = PushImageOptionsBuilder::default().tag(version).build();
        let mut stream = self.docker.push_image(repo, Some(options), credentials);
        let mut digest = None;
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    let Some(status) = info.status else { continue };
                    if let Some(d) = digest_in(&status) {
                        digest = Some(d);
                    }
                    // Byte-progress lines are noise in a log.
                    if info
                        .progress_detail
                        .as_ref()
                        .is_some_and(|p| p.total.is_some())
                    {
                        continue;
                    }
                    let _ = logs.send(crate::scrub::scrub_text(&status)).await;
                }
                Err(DockerError::DockerStreamError { error }) => {
                    return Err(BuildError::Push {
                        tag: tag.to_string(),
                        detail: crate::scrub::scrub_text(&error),
                    });
                }
                Err(DockerError::DockerResponseServerError { message, .. }) => {
                    return Err(BuildError::Push {
                        tag: tag.to_string(),
                        detail: crate::scrub::scrub_text(&message),
                    });
                }
                Err(e) => return Err(BuildError::docker(format!("push {tag}"), e)),
            }
        }
        digest.ok_or_else(|| BuildError::Push {
            tag: tag.to_string(),
            detail: "the registry answered without a manifest digest".into(),
        })
    }

    /// Rejects an image whose configuration or history holds a secret value in an `ENV` or
    /// `ARG` (or elsewhere in a build instruction). The error names the variable, never the value.
    pub async fn check_history(
        &self,
        image: &str,
        secrets: &[(String, SecretString)],
    ) -> Result<(), BuildError> {
        let secrets: Vec<(&str, &str)> = secrets
            .iter()
            .map(|(n, v)| (n.as_str(), v.expose_secret()))
            .filter(|(_, v)| v.len() >= MIN_SECRET_LEN)
            .collect();
        if secrets.is_empty() {
            return Ok(());
        }
        let inspect = self
            .docker
            .inspect_image(image)
            .await
            .map_err(|e| BuildError::docker(format!("inspect {image}"), e))?;
        let env = inspect.config.and_then(|c| c.env).unwrap_or_default();
        let history = self
            .docker
            .image_history(image)
            .await
            .map_err(|e| BuildError::docker(format!("read the history of {image}"), e))?;
        let created_by: Vec<String> = history.into_iter().map(|h| h.created_by).collect();
        match find_secret(&env, &created_by, &secrets) {
            Some((variable, kind)) => Err(BuildError::SecretInImage { variable, kind }),
            None => Ok(()),
        }
    }

    /// Whether the engine has `image` locally.
    pub async fn has_image(&self, image: &str) -> Result<bool, BuildError> {
        match self.docker.inspect_image(image).await {
            Ok(_) => Ok(true),
            Err(DockerError::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(false),
            Err(e) => Err(BuildError::docker(format!("inspect {image}"), e)),
        }
    }

    /// Pulls `tag` from its registry within `timeout`. `Ok(false)` when the registry does not
    /// have it (or refuses it); errors only when the engine itself fails. Used to restore an
    /// application's previous image as its build cache on an engine that lost it.
    pub async fn pull(
        &self,
        tag: &str,
        auth: Option<&RegistryAuth>,
        timeout: std::time::Duration,
    ) -> Result<bool, BuildError> {
        validate_tag(tag)?;
        let (repo, version) = split_tag(tag);
        let credentials = auth.map(|a| DockerCredentials {
            username: Some(a.username.clone()),
            password: Some(a.password.expose_secret().to_string()),
            serveraddress: Some(registry_of(repo).to_string()),
            ..Default::default()
        });
        let options = bollard::query_parameters::CreateImageOptionsBuilder::default()
            .from_image(repo)
            .tag(version)
            .build();
        let pull = async {
            let mut stream = self.docker.create_image(Some(options), None, credentials);
            while let Some(item) = stream.next().await {
                match item {
                    Ok(_) => {}
                    Err(
                        DockerError::DockerStreamError { .. }
                        | DockerError::DockerResponseServerError { .. },
                    ) => return Ok(false),
                    Err(e) => return Err(BuildError::docker(format!("pull {tag}"), e)),
                }
            }
            Ok(true)
        };
        match tokio::time::timeout(timeout, pull).await {
            Ok(r) => r,
            Err(_) => Ok(false),
        }
    }

    /// Removes an image (all tags given), ignoring images that do not exist.
    pub async fn remove_image(&self, image: &str) -> Result<(), BuildError> {
        let options = bollard::query_parameters::RemoveImageOptionsBuilder::default()
            .force(true)
            .build();
        match self.docker.remove_image(image, Some(options), None).await {
            Ok(_) => Ok(()),
            Err(DockerError::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(e) => Err(BuildError::docker(format!("remove {image}"), e)),
        }
    }
}

/// Scrubbed output: complete lines go to `logs`; the last lines and the current step are kept.
struct Output {
    scrubber: Scrubber,
    logs: mpsc::Sender<String>,
    /// A slow log reader must not hold a cancelled or timed-out build.
    cancel: CancellationToken,
    deadline: tokio::time::Instant,
    tail: VecDeque<String>,
    step: Option<String>,
    partial: String,
}

impl Output {
    fn new(
        secrets: &[SecretString],
        logs: mpsc::Sender<String>,
        cancel: CancellationToken,
        deadline: tokio::time::Instant,
    ) -> Self {
        Output {
            scrubber: Scrubber::new(secrets),
            logs,
            cancel,
            deadline,
            tail: VecDeque::new(),
            step: None,
            partial: String::new(),
        }
    }

    async fn push(&mut self, text: &str) {
        let clean = self.scrubber.push(text);
        self.emit(&clean, false).await;
    }

    async fn finish(&mut self) {
        let clean = self.scrubber.finish();
        self.emit(&clean, true).await;
    }

    async fn emit(&mut self, clean: &str, all: bool) {
        self.partial.push_str(clean);
        let mut lines = Vec::new();
        while let Some(nl) = self.partial.find('\n') {
            let rest = self.partial.split_off(nl + 1);
            let mut line = std::mem::replace(&mut self.partial, rest);
            line.truncate(line.trim_end_matches(['\n', '\r']).len());
            lines.push(line);
        }
        // The scrubber holds partial lines back itself; what it releases without a newline
        // (at the end, or an overlong line) is shown as a line of its own.
        if !self.partial.is_empty() && (all || !clean.is_empty()) {
            lines.push(std::mem::take(&mut self.partial));
        }
        for line in lines {
            if let Some((head, instr)) = line.split_once(" : ")
                && head.starts_with("Step ")
            {
                self.step = Some(format!("{} ({})", head.to_ascii_lowercase(), instr.trim()));
            }
            let plain = strip_ansi(&line);
            if !plain.trim().is_empty() {
                if self.tail.len() == TAIL_LINES {
                    self.tail.pop_front();
                }
                self.tail.push_back(plain);
            }
            tokio::select! {
                _ = self.logs.send(line) => {}
                _ = self.cancel.cancelled() => {}
                _ = tokio::time::sleep_until(self.deadline) => {}
            }
        }
    }
}

/// `text` without terminal escape sequences (the engine colours a step's stderr), for
/// error messages.
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'[') {
            chars.next();
            // Parameters and intermediates, then one final byte in @..~.
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) {
                    break;
                }
            }
        }
    }
    out
}

fn scrub_with(secrets: &[SecretString], text: &str) -> String {
    let mut s = Scrubber::new(secrets);
    let mut out = s.push(text);
    out.push_str(&s.finish());
    out
}

fn is_broken_pipe(e: &BuildError) -> bool {
    matches!(e, BuildError::Io { source, .. } if source.kind() == std::io::ErrorKind::BrokenPipe)
}

fn cpu_quota(nano_cpus: i64) -> i32 {
    // period 100 ms: quota = cpus × 100 000 µs
    let quota = nano_cpus.saturating_mul(100_000) / 1_000_000_000;
    quota.clamp(1_000, i32::MAX as i64) as i32
}

/// Appends `query` to the `/build` request's query string.
fn with_build_query(docker: Docker, query: String) -> Docker {
    if query.is_empty() {
        return docker;
    }
    docker.with_request_modifier(move |mut req| {
        if req.uri().path().ends_with("/build") {
            let uri = req.uri().to_string();
            let sep = if uri.contains('?') { '&' } else { '?' };
            if let Ok(new) = format!("{uri}{sep}{query}").parse() {
                *req.uri_mut() = new;
            }
        }
        req
    })
}

fn query_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn validate_tag(tag: &str) -> Result<(), BuildError> {
    let ok = !tag.is_empty()
        && tag.len() <= 512
        && !tag.starts_with(['-', '/', ':'])
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/:@".contains(c));
    if ok {
        Ok(())
    } else {
        Err(BuildError::InvalidInput(format!(
            "'{tag}' is not a valid image reference; use registry/name:tag with lowercase letters, digits, . _ - / :"
        )))
    }
}

/// `host:5000/org-app:abc` → (`host:5000/org-app`, `abc`); no tag → `latest`.
pub fn split_tag(reference: &str) -> (&str, &str) {
    let last_slash = reference.rfind('/').map(|i| i + 1).unwrap_or(0);
    match reference[last_slash..].rfind(':') {
        Some(i) => (
            &reference[..last_slash + i],
            &reference[last_slash + i + 1..],
        ),
        None => (reference, "latest"),
    }
}

/// The registry host of a repository (`docker.io` when none is named).
pub fn registry_of(repo: &str) -> &str {
    match repo.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            first
        }
        _ => "docker.io",
    }
}

fn digest_in(status: &str) -> Option<String> {
    let i = status.find("digest: sha256:")?;
    let rest = &status[i + "digest: ".len()..];
    let d: String = rest
        .chars()
        .take_while(|c| c.is_ascii_hexdigit() || *c == ':' || c.is_ascii_alphanumeric())
        .collect();
    (d.len() == "sha256:".len() + 64).then_some(d)
}

/// Finds a secret value in the image's environment or history; returns (variable, instruction).
fn find_secret(
    env: &[String],
    created_by: &[String],
    secrets: &[(&str, &str)],
) -> Option<(String, String)> {
    for (name, value) in secrets {
        for entry in env {
            if let Some((k, v)) = entry.split_once('=')
                && v.contains(value)
            {
                return Some((k.to_string(), "ENV".into()));
            }
        }
        for line in created_by {
            let Some(idx) = line.find(value) else {
                continue;
            };
            // `|N K=V … /bin/sh -c …`: build arguments used by a RUN step.
            if line.starts_with('|') {
                let cmd_start = line
                    .find(" /bin/sh -c")
                    .or_else(|| line.find(" /bin/bash -c"));
                if cmd_start.is_none_or(|c| idx < c) {
                    return Some((
                        variable_before(line, idx).unwrap_or_else(|| name.to_string()),
                        "ARG".into(),
                    ));
                }
            }
            if let Some(nop) = line.find("#(nop)") {
                let instr = line[nop + "#(nop)".len()..]
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_ascii_uppercase();
                if instr == "ENV" || instr == "ARG" || instr == "LABEL" {
                    return Some((
                        variable_before(line, idx).unwrap_or_else(|| name.to_string()),
                        instr,
                    ));
                }
                return Some((name.to_string(), instr));
            }
            return Some((name.to_string(), "RUN".into()));
        }
    }
    None
}

/// The `NAME` of the nearest `NAME=` before `idx`.
fn variable_before(line: &str, idx: usize) -> Option<String> {
    let head = &line[..idx];
    let eq = head.rfind('=')?;
    let name: String = head[..eq]
        .chars()
        .rev()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.' || *c == '-')
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_and_registries() {
        assert_eq!(
            split_tag("127.0.0.1:5000/hanzo-web:abc1234"),
            ("127.0.0.1:5000/hanzo-web", "abc1234")
        );
        assert_eq!(
            split_tag("127.0.0.1:5000/hanzo-web"),
            ("127.0.0.1:5000/hanzo-web", "latest")
        );
        assert_eq!(split_tag("node:18"), ("node", "18"));
        assert_eq!(registry_of("127.0.0.1:5000/hanzo-web"), "127.0.0.1:5000");
        assert_eq!(registry_of("ghcr.io/hanzoai/x"), "ghcr.io");
        assert_eq!(registry_of("library/node"), "docker.io");
        assert!(validate_tag("ghcr.io/hanzoai/hanzo-cloud:abc1234").is_ok());
        assert!(validate_tag("x y").is_err());
        assert!(validate_tag("-x").is_err());
    }

    #[test]
    fn digest_from_push_status() {
        let d = "sha256:".to_string() + &"ab".repeat(32);
        assert_eq!(
            digest_in(&format!("abc1234: digest: {d} size: 528")),
            Some(d)
        );
        assert_eq!(digest_in("Pushed"), None);
    }

    #[test]
    fn escapes_are_stripped_from_error_lines() {
        assert_eq!(
            strip_ansi("\u{1b}[91mKilled\u{1b}[0m and more"),
            "Killed and more"
        );
        assert_eq!(strip_ansi("plain [text]"), "plain [text]");
    }

    #[test]
    fn cpu_quota_from_nano_cpus() {
        assert_eq!(cpu_quota(2_000_000_000), 200_000);
        assert_eq!(cpu_quota(500_000_000), 50_000);
    }

    #[test]
    fn secret_found_in_env_arg_and_run() {
        let secrets = [("DB_PASSWORD", "hunter2-sentinel")];
        let env = vec![
            "PATH=/usr/bin".to_string(),
            "PASSWORD=hunter2-sentinel".to_string(),
        ];
        assert_eq!(
            find_secret(&env, &[], &secrets),
            Some(("PASSWORD".into(), "ENV".into()))
        );

        let hist = vec!["/bin/sh -c #(nop)  ENV TOKEN=hunter2-sentinel".to_string()];
        assert_eq!(
            find_secret(&[], &hist, &secrets),
            Some(("TOKEN".into(), "ENV".into()))
        );

        let hist = vec!["|2 A=1 MY_ARG=hunter2-sentinel /bin/sh -c echo hi".to_string()];
        assert_eq!(
            find_secret(&[], &hist, &secrets),
            Some(("MY_ARG".into(), "ARG".into()))
        );

        let hist = vec!["/bin/sh -c #(nop)  ARG X=hunter2-sentinel".to_string()];
        assert_eq!(
            find_secret(&[], &hist, &secrets),
            Some(("X".into(), "ARG".into()))
        );

        let hist = vec!["|1 A=1 /bin/sh -c echo hunter2-sentinel > f".to_string()];
        assert_eq!(
            find_secret(&[], &hist, &secrets),
            Some(("DB_PASSWORD".into(), "RUN".into()))
        );

        let hist = vec!["/bin/sh -c #(nop)  ENV OTHER=value".to_string()];
        assert_eq!(find_secret(&env[..1], &hist, &secrets), None);
    }
}
