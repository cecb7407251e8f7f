//! The commands of the spec ("CLI Commands"), each a thin call to the REST API.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};

use crate::client::{ApiFailure, CliConfig, Client};

/// Exit codes a script can rely on.
pub mod exit {
    pub const OK: u8 = 0;
    /// The operation ran and failed (a deployment failed, a manifest is invalid).
    pub const FAILED: u8 = 1;
    /// Wrong usage (clap uses 2 as well).
    pub const USAGE: u8 = 2;
    /// Not logged in, or not allowed.
    pub const AUTH: u8 = 3;
    /// The thing named does not exist (or is not visible to you).
    pub const NOT_FOUND: u8 = 4;
    /// The server cannot be reached, or a dependency of it is down.
    pub const UNAVAILABLE: u8 = 5;
}

pub fn exit_code_of(e: &anyhow::Error) -> u8 {
    if let Some(f) = e.downcast_ref::<ApiFailure>() {
        return match f.status {
            400 | 409 | 422 => exit::USAGE,
            401 | 403 => exit::AUTH,
            404 => exit::NOT_FOUND,
            502..=504 => exit::UNAVAILABLE,
            _ => exit::FAILED,
        };
    }
    if e.to_string().starts_with("cannot reach the Hanzo server") {
        return exit::UNAVAILABLE;
    }
    exit::FAILED
}

#[derive(Parser)]
#[command(
    name = "hanzo",
    version,
    about = "Hanzo Platform: deploy applications from a git repository with hanzo.yaml"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the control plane (API, build workers, reconciler, embedded Traefik).
    Server,
    /// Save the server URL and an API token for the other commands.
    Login(LoginArgs),
    /// List applications, or create and delete them.
    Apps(AppsArgs),
    /// Build and deploy an application (from its branch, or a prebuilt image).
    Deploy(DeployArgs),
    /// Status of all applications, or of one with its deployment history.
    Status(StatusArgs),
    /// Return to an earlier deployment without rebuilding.
    Rollback(RollbackArgs),
    /// Set the number of instances (0 stops the application).
    Scale(ScaleArgs),
    /// Show the build log of a deployment.
    BuildLogs(BuildLogsArgs),
    /// Logs of an application's running instances.
    Logs(LogsArgs),
    /// Environment variables of an application.
    Env(EnvArgs),
    /// Domains routed to an application.
    Domains(DomainsArgs),
    /// Organisations you belong to, and their members.
    Orgs(OrgsArgs),
    /// Your API tokens.
    Tokens(TokensArgs),
    /// The push webhook of an application (URL and secret).
    Webhook(WebhookArgs),
    /// The audit log of your organisations (admins).
    Audit(AuditArgs),
    /// Check, explain or describe hanzo.yaml.
    Manifest(ManifestArgs),
    /// How the application in this directory would be built.
    Build(BuildArgs),
}

#[derive(Args)]
struct LoginArgs {
    /// Server URL, e.g. http://127.0.0.1:3000.
    #[arg(long, env = "HANZO_SERVER")]
    server: Option<String>,
    /// API token (or set HANZO_TOKEN).
    #[arg(long, env = "HANZO_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Read the token from this file (e.g. the server's admin.token).
    #[arg(long, conflicts_with = "token")]
    token_file: Option<PathBuf>,
}

#[derive(Args)]
struct AppsArgs {
    #[command(subcommand)]
    command: Option<AppsCommand>,
    /// Only this organisation.
    #[arg(long)]
    org: Option<String>,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum AppsCommand {
    /// Register an application.
    Create {
        #[arg(long)]
        name: String,
        /// Organisation that owns it (default: your only one).
        #[arg(long)]
        org: Option<String>,
        /// Git URL or local path of the repository.
        #[arg(long)]
        repo: String,
        #[arg(long, default_value = "main")]
        branch: String,
        #[arg(long)]
        json: bool,
    },
    /// Delete an application, its instances and its history.
    Delete {
        name: String,
        #[arg(long)]
        org: Option<String>,
        /// Do not ask for confirmation.
        #[arg(long, short)]
        yes: bool,
    },
}

#[derive(Args)]
struct DeployArgs {
    /// Application name (default: `name` in ./hanzo.yaml).
    app: Option<String>,
    #[arg(long)]
    org: Option<String>,
    /// Build this branch instead of the application's.
    #[arg(long, conflicts_with = "image")]
    branch: Option<String>,
    /// Deploy a prebuilt image as it is.
    #[arg(long)]
    image: Option<String>,
    /// Return once the deployment is queued instead of following it.
    #[arg(long)]
    no_follow: bool,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct StatusArgs {
    app: Option<String>,
    #[arg(long)]
    org: Option<String>,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct RollbackArgs {
    app: String,
    #[arg(long)]
    org: Option<String>,
    /// Image tag, commit, or N for the N-th most recent earlier deployment.
    #[arg(long)]
    to: Option<String>,
    #[arg(long)]
    no_follow: bool,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ScaleArgs {
    app: String,
    instances: u32,
    #[arg(long)]
    org: Option<String>,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct BuildLogsArgs {
    /// Deployment id (see `hanzo status APP`).
    deployment: String,
    /// Keep following until the deployment finishes.
    #[arg(long, short)]
    follow: bool,
}

#[derive(Args)]
struct LogsArgs {
    app: String,
    #[arg(long)]
    org: Option<String>,
    /// Only lines since then: 30s, 15m, 1h, 2d.
    #[arg(long)]
    since: Option<String>,
    /// Keep printing new lines.
    #[arg(long, short)]
    follow: bool,
    /// At most this many lines per instance.
    #[arg(long, default_value_t = 200)]
    tail: u32,
    /// Only error, warn, info or debug lines (and worse).
    #[arg(long)]
    level: Option<String>,
}

#[derive(Args)]
struct EnvArgs {
    app: String,
    #[command(subcommand)]
    command: Option<EnvCommand>,
    #[arg(long)]
    org: Option<String>,
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum EnvCommand {
    /// List variables (secrets masked).
    List,
    /// Set KEY=value, or KEY --secret (the value is asked for).
    Set {
        assignment: String,
        #[arg(long)]
        secret: bool,
    },
    /// Remove a variable.
    Unset { key: String },
}

#[derive(Args)]
struct DomainsArgs {
    app: String,
    #[command(subcommand)]
    command: Option<DomainsCommand>,
    #[arg(long)]
    org: Option<String>,
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum DomainsCommand {
    List,
    /// Route a domain (host, optionally with a path) to the application.
    Add {
        domain: String,
    },
    Remove {
        domain: String,
    },
}

#[derive(Args)]
struct OrgsArgs {
    #[command(subcommand)]
    command: Option<OrgsCommand>,
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum OrgsCommand {
    /// Create an organisation (global admins).
    Create { name: String },
    /// Members of an organisation and their roles (admins).
    Members {
        org: String,
        #[arg(long)]
        json: bool,
    },
    /// Give a user a role in an organisation: viewer, developer or admin.
    Grant {
        org: String,
        user: String,
        role: String,
        #[arg(long)]
        email: Option<String>,
    },
    /// Remove a user from an organisation.
    Revoke { org: String, user: String },
}

#[derive(Args)]
struct TokensArgs {
    #[command(subcommand)]
    command: Option<TokensCommand>,
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum TokensCommand {
    /// Create a token (shown once).
    Create {
        name: String,
        /// Lifetime in days; 0 never expires.
        #[arg(long, default_value_t = 90)]
        days: u32,
        /// For another user (global admins).
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by id.
    Revoke { id: String },
}

#[derive(Args)]
struct WebhookArgs {
    app: String,
    #[arg(long)]
    org: Option<String>,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct AuditArgs {
    #[arg(long)]
    org: Option<String>,
    #[arg(long)]
    app: Option<String>,
    #[arg(long)]
    user: Option<String>,
    #[arg(long)]
    action: Option<String>,
    /// RFC 3339 time, e.g. 2026-01-01T00:00:00Z.
    #[arg(long)]
    since: Option<String>,
    #[arg(long)]
    until: Option<String>,
    #[arg(long, default_value_t = 100)]
    limit: u32,
    /// Export as csv or json (printed to standard output).
    #[arg(long)]
    format: Option<String>,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct BuildArgs {
    #[command(subcommand)]
    command: BuildCommand,
}

#[derive(Subcommand)]
enum BuildCommand {
    /// Print the runtime, base images and the Dockerfile the platform would use
    /// (copy it to ./Dockerfile to take the build into your own hands).
    Plan {
        /// Repository directory (default: the current one).
        path: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
struct ManifestArgs {
    #[command(subcommand)]
    command: ManifestCommand,
}

#[derive(Subcommand)]
enum ManifestCommand {
    /// Validate hanzo.yaml (exit code 0 when valid, 1 when not).
    Check { path: Option<PathBuf> },
    /// Print the resolved manifest with every default filled in.
    Explain { path: Option<PathBuf> },
    /// Print the JSON Schema of hanzo.yaml (for editors).
    Schema,
}

pub async fn run(cli: Cli) -> Result<u8> {
    match cli.command {
        Command::Server => server().await,
        Command::Login(a) => login(a).await,
        Command::Apps(a) => apps(a).await,
        Command::Deploy(a) => deploy(a).await,
        Command::Status(a) => status(a).await,
        Command::Rollback(a) => rollback(a).await,
        Command::Scale(a) => scale(a).await,
        Command::BuildLogs(a) => build_logs(a).await,
        Command::Logs(a) => logs(a).await,
        Command::Env(a) => env(a).await,
        Command::Domains(a) => domains(a).await,
        Command::Orgs(a) => orgs(a).await,
        Command::Tokens(a) => tokens(a).await,
        Command::Webhook(a) => webhook(a).await,
        Command::Audit(a) => audit(a).await,
        Command::Manifest(a) => manifest(a),
        Command::Build(a) => build(a),
    }
}

async fn server() -> Result<u8> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("HANZO_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tower_http=warn,sqlx=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .init();
    let config = hanzo_server::Config::from_env()?;
    hanzo_server::run(config, tokio_util_token()).await?;
    Ok(exit::OK)
}

fn tokio_util_token() -> hanzo_server::CancellationToken {
    hanzo_server::CancellationToken::new()
}

fn client() -> Result<Client> {
    Client::new(&CliConfig::load()?)
}

fn q(org: &Option<String>) -> String {
    match org {
        Some(o) => format!("?org={o}"),
        None => String::new(),
    }
}

fn print_json(v: &Value) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Asks on standard error, only when a person is at the terminal.
fn prompt(text: &str) {
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        eprint!("{text}");
    }
}

async fn login(a: LoginArgs) -> Result<u8> {
    let mut cfg = CliConfig::load_or_default();
    if let Some(s) = a.server {
        cfg.server = Some(s);
    }
    let token = match (a.token, a.token_file) {
        (Some(t), _) => t,
        (None, Some(f)) => std::fs::read_to_string(&f)
            .with_context(|| {
                format!(
                    "cannot read {} — check the path of the token file",
                    f.display()
                )
            })?
            .trim()
            .to_string(),
        (None, None) => {
            prompt("API token: ");
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .context("cannot read the token from standard input")?;
            line.trim().to_string()
        }
    };
    if token.is_empty() {
        bail!("the token is empty — pass --token, --token-file or type it at the prompt");
    }
    cfg.token = Some(token);
    let me: Value = Client::new(&cfg)?.get("/api/v1/whoami").await?;
    let path = cfg.save()?;
    println!(
        "Logged in to {} as {} (saved in {}).",
        cfg.server.as_deref().unwrap_or("http://127.0.0.1:3000"),
        s(&me["user"], "email"),
        path.display()
    );
    Ok(exit::OK)
}

async fn apps(a: AppsArgs) -> Result<u8> {
    let c = client()?;
    match a.command {
        None => {
            let list: Value = c.get(&format!("/api/v1/apps{}", q(&a.org))).await?;
            if a.json {
                print_json(&list)?;
            } else {
                let rows = list.as_array().cloned().unwrap_or_default();
                if rows.is_empty() {
                    println!(
                        "No applications yet. Create one with `hanzo apps create --name NAME --repo URL`."
                    );
                }
                println!(
                    "{:<12} {:<20} {:<10} {:<8} REPO",
                    "ORG", "NAME", "STATUS", "BRANCH"
                );
                for r in rows {
                    println!(
                        "{:<12} {:<20} {:<10} {:<8} {}",
                        s(&r, "org"),
                        s(&r, "name"),
                        s(&r, "status"),
                        s(&r, "branch"),
                        s(&r, "repo")
                    );
                }
            }
        }
        Some(AppsCommand::Create {
            name,
            org,
            repo,
            branch,
            json,
        }) => {
            let repo = normalise_repo(&repo);
            let app: Value = c
                .post(
                    "/api/v1/apps",
                    &json!({"name": name, "org": org, "repo": repo, "branch": branch}),
                )
                .await?;
            if json {
                print_json(&app)?;
            } else {
                println!(
                    "Created {}/{} from {} ({}). Deploy it with `hanzo deploy {}`.",
                    s(&app, "org"),
                    s(&app, "name"),
                    s(&app, "repo"),
                    s(&app, "branch"),
                    s(&app, "name")
                );
            }
        }
        Some(AppsCommand::Delete { name, org, yes }) => {
            if !yes {
                prompt(&format!(
                    "Delete {name}, its instances and its deployment history? Type the name to confirm: "
                ));
                let mut line = String::new();
                std::io::stdin()
                    .read_line(&mut line)
                    .context("cannot read the confirmation")?;
                if line.trim() != name {
                    eprintln!("Not deleted.");
                    return Ok(exit::FAILED);
                }
            }
            let _: Value = c.delete(&format!("/api/v1/apps/{name}{}", q(&org))).await?;
            println!("Deleted {name}.");
        }
    }
    Ok(exit::OK)
}

/// A local path becomes absolute, so the server finds it whatever its directory.
fn normalise_repo(repo: &str) -> String {
    let p = std::path::Path::new(repo);
    if !repo.contains("://")
        && !repo.contains('@')
        && p.exists()
        && let Ok(abs) = std::fs::canonicalize(p)
    {
        return abs.display().to_string();
    }
    repo.to_string()
}

fn app_from_cwd(app: Option<String>) -> Result<String> {
    if let Some(a) = app {
        return Ok(a);
    }
    match hanzo_manifest::load(std::path::Path::new(".")) {
        Ok(m) => Ok(m.name),
        Err(_) => {
            bail!("which application? pass its name, or run the command where its hanzo.yaml is")
        }
    }
}

async fn deploy(a: DeployArgs) -> Result<u8> {
    let c = client()?;
    let app = app_from_cwd(a.app)?;
    let mut body = json!({});
    if let Some(b) = &a.branch {
        body["branch"] = json!(b);
    }
    if let Some(i) = &a.image {
        body["image"] = json!(i);
        if let Ok(text) = std::fs::read_to_string("hanzo.yaml") {
            body["manifest"] = json!(text);
        }
    }
    let d: Value = c
        .post(&format!("/api/v1/apps/{app}/deploy{}", q(&a.org)), &body)
        .await?;
    if a.no_follow {
        if a.json {
            print_json(&d)?;
        } else {
            println!(
                "Deployment #{} of {app} queued ({}).",
                d["number"],
                s(&d, "id")
            );
        }
        return Ok(exit::OK);
    }
    follow(&c, s(&d, "id"), a.json).await
}

async fn rollback(a: RollbackArgs) -> Result<u8> {
    let c = client()?;
    let body = match &a.to {
        Some(t) => json!({"to": t}),
        None => json!({}),
    };
    let d: Value = c
        .post(
            &format!("/api/v1/apps/{}/rollback{}", a.app, q(&a.org)),
            &body,
        )
        .await?;
    if a.no_follow {
        if a.json {
            print_json(&d)?;
        } else {
            println!("Rolling {} back to {}.", a.app, s(&d, "imageTag"));
        }
        return Ok(exit::OK);
    }
    follow(&c, s(&d, "id"), a.json).await
}

/// Prints a deployment's build log and events as they happen, until it ends.
async fn follow(c: &Client, id: &str, json_out: bool) -> Result<u8> {
    let mut after: i64 = 0;
    let mut seen_events = 0usize;
    let spinner = (!json_out && std::io::IsTerminal::is_terminal(&std::io::stderr())).then(|| {
        let pb = indicatif::ProgressBar::new_spinner();
        pb.enable_steady_tick(Duration::from_millis(120));
        pb
    });
    let final_status = loop {
        let log: Value = c
            .get(&format!(
                "/api/v1/deployments/{id}/logs?after={after}&wait=5"
            ))
            .await?;
        after = log["after"].as_i64().unwrap_or(after);
        let text = s(&log, "text");
        if !text.is_empty() && !json_out {
            let out = text.trim_end_matches('\n');
            match &spinner {
                Some(pb) => pb.suspend(|| println!("{out}")),
                None => println!("{out}"),
            }
        }
        let events: Value = c.get(&format!("/api/v1/deployments/{id}/events")).await?;
        let events = events.as_array().cloned().unwrap_or_default();
        for e in events.iter().skip(seen_events) {
            if !json_out {
                let line = format!("--> {}: {}", s(e, "type"), s(e, "message"));
                match &spinner {
                    Some(pb) => pb.suspend(|| eprintln!("{line}")),
                    None => eprintln!("{line}"),
                }
            }
        }
        seen_events = events.len();
        let status = s(&log, "status").to_string();
        if let Some(pb) = &spinner {
            pb.set_message(status.clone());
        }
        if !matches!(
            status.as_str(),
            "queued" | "building" | "pushing" | "deploying"
        ) {
            break status;
        }
    };
    if let Some(pb) = spinner {
        pb.finish_and_clear();
    }
    let d: Value = c.get(&format!("/api/v1/deployments/{id}")).await?;
    if json_out {
        print_json(&d)?;
    }
    let _ = std::io::stdout().flush();
    if final_status == "running" {
        if !json_out {
            println!(
                "Deployment #{} is running {} — {}",
                d["number"],
                s(&d, "imageTag"),
                s(&d, "url")
            );
        }
        Ok(exit::OK)
    } else {
        if !json_out {
            eprintln!(
                "error: deployment #{} {}: {}",
                d["number"],
                final_status,
                s(&d, "error")
            );
        }
        Ok(exit::FAILED)
    }
}

async fn status(a: StatusArgs) -> Result<u8> {
    let c = client()?;
    let Some(app) = a.app else {
        let list: Value = c.get(&format!("/api/v1/apps{}", q(&a.org))).await?;
        if a.json {
            print_json(&list)?;
            return Ok(exit::OK);
        }
        println!(
            "{:<12} {:<20} {:<10} {:<9} DOMAINS",
            "ORG", "NAME", "STATUS", "INSTANCES"
        );
        for r in list.as_array().cloned().unwrap_or_default() {
            let domains: Vec<String> = r["domains"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .filter_map(|d| d.as_str().map(String::from))
                .collect();
            println!(
                "{:<12} {:<20} {:<10} {:<9} {}",
                s(&r, "org"),
                s(&r, "name"),
                s(&r, "status"),
                r["instances"],
                domains.join(",")
            );
        }
        return Ok(exit::OK);
    };
    let v: Value = c.get(&format!("/api/v1/apps/{app}{}", q(&a.org))).await?;
    if a.json {
        print_json(&v)?;
        return Ok(exit::OK);
    }
    println!(
        "{}/{}  {}  ({} instance(s) wanted)",
        s(&v, "org"),
        s(&v, "name"),
        s(&v, "status"),
        v["instances"]
    );
    println!("repo    {} ({})", s(&v, "repo"), s(&v, "branch"));
    match v.get("currentDeployment").filter(|d| !d.is_null()) {
        Some(d) => {
            println!(
                "current #{} {} {}",
                d["number"],
                s(d, "status"),
                s(d, "imageTag")
            );
            println!(
                "        commit {} {}",
                short(s(d, "gitCommit")),
                s(d, "gitMessage")
            );
            println!("        by {} at {}", s(d, "deployedBy"), s(d, "startedAt"));
            println!("        url {}", s(d, "url"));
        }
        None => println!("current none (not deployed yet)"),
    }
    if let Some(list) = v["instancesObserved"].as_array() {
        println!("instances:");
        for i in list {
            let flags = match (i["crashLoop"].as_bool(), i["unhealthy"].as_bool()) {
                (Some(true), _) => " CRASH LOOP",
                (_, Some(true)) => " unhealthy",
                _ => "",
            };
            println!(
                "  {:<32} {:<8} {:<16} restarts {:<3} {}{flags}",
                s(i, "name"),
                s(i, "state"),
                s(i, "address"),
                i["restartCount"],
                s(i, "image")
            );
        }
    }
    println!("history:");
    println!(
        "  {:<4} {:<12} {:<9} {:<40} {:<21} WHEN",
        "#", "STATUS", "COMMIT", "IMAGE", "BY"
    );
    for d in v["deployments"].as_array().cloned().unwrap_or_default() {
        println!(
            "  {:<4} {:<12} {:<9} {:<40} {:<21} {}",
            d["number"].as_i64().unwrap_or_default(),
            s(&d, "status"),
            short(s(&d, "gitCommit")),
            s(&d, "imageTag"),
            s(&d, "deployedBy"),
            s(&d, "startedAt")
        );
        if let Some(e) = d["error"].as_str() {
            println!("       {}", e.lines().next().unwrap_or(""));
        }
    }
    Ok(exit::OK)
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(7)]
}

async fn scale(a: ScaleArgs) -> Result<u8> {
    let c = client()?;
    let v: Value = c
        .post(
            &format!("/api/v1/apps/{}/scale{}", a.app, q(&a.org)),
            &json!({"instances": a.instances}),
        )
        .await?;
    if a.json {
        print_json(&v)?;
    } else if a.instances == 0 {
        println!("Scaled {} to 0: stopped, nothing is routed.", a.app);
    } else {
        println!(
            "Scaling {} to {} instance(s); the next deployment applies deploy.instances from hanzo.yaml again.",
            a.app, a.instances
        );
    }
    Ok(exit::OK)
}

async fn build_logs(a: BuildLogsArgs) -> Result<u8> {
    let c = client()?;
    let mut after = 0i64;
    loop {
        let wait = if a.follow { 10 } else { 0 };
        let log: Value = c
            .get(&format!(
                "/api/v1/deployments/{}/logs?after={after}&wait={wait}",
                a.deployment
            ))
            .await?;
        after = log["after"].as_i64().unwrap_or(after);
        print!("{}", s(&log, "text"));
        let status = s(&log, "status");
        let busy = matches!(status, "queued" | "building" | "pushing" | "deploying");
        if !a.follow || !busy {
            break;
        }
    }
    Ok(exit::OK)
}

/// `?a=1&b=2` from the pairs that have a value, percent-encoded.
fn query(pairs: &[(&str, Option<String>)]) -> String {
    let mut u = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        if let Some(v) = v {
            u.append_pair(k, v);
        }
    }
    let s = u.finish();
    if s.is_empty() { s } else { format!("?{s}") }
}

fn enc(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes()).collect()
}

async fn logs(a: LogsArgs) -> Result<u8> {
    let c = client()?;
    let q = query(&[
        ("org", a.org.clone()),
        ("since", a.since.clone()),
        ("tail", Some(a.tail.to_string())),
        ("level", a.level.clone()),
        ("follow", a.follow.then(|| "true".to_string())),
    ]);
    let path = format!("/api/v1/apps/{}/logs{q}", enc(&a.app));
    if a.follow {
        c.stream_text(&path, |chunk| {
            print!("{chunk}");
            let _ = std::io::stdout().flush();
        })
        .await?;
    } else {
        print!("{}", c.get_text(&path).await?);
    }
    Ok(exit::OK)
}

async fn env(a: EnvArgs) -> Result<u8> {
    let c = client()?;
    let base = format!("/api/v1/apps/{}/env", enc(&a.app));
    let org = q(&a.org);
    match a.command.unwrap_or(EnvCommand::List) {
        EnvCommand::List => {
            let v: Value = c.get(&format!("{base}{org}")).await?;
            if a.json {
                print_json(&v)?;
            } else {
                for e in v.as_array().cloned().unwrap_or_default() {
                    let tag = if e["secret"].as_bool() == Some(true) {
                        "  (secret, from KMS)"
                    } else {
                        ""
                    };
                    println!("{}={}{tag}", s(&e, "name"), s(&e, "value"));
                }
            }
        }
        EnvCommand::Set { assignment, secret } => {
            let (key, value) = match assignment.split_once('=') {
                Some((k, v)) => (k.to_string(), Some(v.to_string())),
                None if secret => (assignment.clone(), None),
                None => bail!("give KEY=value (or KEY --secret to be asked for the value)"),
            };
            let value = match (value, secret) {
                (Some(v), _) => v,
                (None, _) => {
                    prompt(&format!("Value of {key} (not echoed to logs): "));
                    let mut line = String::new();
                    std::io::stdin()
                        .read_line(&mut line)
                        .context("cannot read the value")?;
                    line.trim_end_matches(['\r', '\n']).to_string()
                }
            };
            let _: Value = c
                .put(
                    &format!("{base}/{}{org}", enc(&key)),
                    &json!({"value": value, "secret": secret}),
                )
                .await?;
            println!(
                "Set {key} on {}; instances started from now on get it (deploy, scale or restart).",
                a.app
            );
        }
        EnvCommand::Unset { key } => {
            let _: Value = c.delete(&format!("{base}/{}{org}", enc(&key))).await?;
            println!("Removed {key} from {}.", a.app);
        }
    }
    Ok(exit::OK)
}

async fn domains(a: DomainsArgs) -> Result<u8> {
    let c = client()?;
    let base = format!("/api/v1/apps/{}/domains", enc(&a.app));
    let org = q(&a.org);
    match a.command.unwrap_or(DomainsCommand::List) {
        DomainsCommand::List => {
            let v: Value = c.get(&format!("{base}{org}")).await?;
            if a.json {
                print_json(&v)?;
            } else {
                for d in v.as_array().cloned().unwrap_or_default() {
                    println!("{}", d.as_str().unwrap_or(""));
                }
            }
        }
        DomainsCommand::Add { domain } => {
            let v: Value = c
                .post(&format!("{base}{org}"), &json!({"domain": domain}))
                .await?;
            println!("Routing {} to {}.", s(&v, "domain"), a.app);
        }
        DomainsCommand::Remove { domain } => {
            let _: Value = c.delete(&format!("{base}/{}{org}", enc(&domain))).await?;
            println!("Removed {domain} from {}.", a.app);
        }
    }
    Ok(exit::OK)
}

async fn orgs(a: OrgsArgs) -> Result<u8> {
    let c = client()?;
    match a.command {
        None => {
            let v: Value = c.get("/api/v1/orgs").await?;
            if a.json {
                print_json(&v)?;
            } else {
                println!("{:<24} ROLE", "ORGANISATION");
                for o in v.as_array().cloned().unwrap_or_default() {
                    println!("{:<24} {}", s(&o, "name"), s(&o, "role"));
                }
            }
        }
        Some(OrgsCommand::Create { name }) => {
            let _: Value = c.post("/api/v1/orgs", &json!({"name": name})).await?;
            println!("Created organisation {name}.");
        }
        Some(OrgsCommand::Members { org, json }) => {
            let v: Value = c
                .get(&format!("/api/v1/orgs/{}/members", enc(&org)))
                .await?;
            if json || a.json {
                print_json(&v)?;
            } else {
                println!("{:<32} ROLE", "USER");
                for m in v.as_array().cloned().unwrap_or_default() {
                    println!("{:<32} {}", s(&m, "userId"), s(&m, "role"));
                }
            }
        }
        Some(OrgsCommand::Grant {
            org,
            user,
            role,
            email,
        }) => {
            let _: Value = c
                .put(
                    &format!("/api/v1/orgs/{}/members/{}", enc(&org), enc(&user)),
                    &json!({"role": role, "email": email}),
                )
                .await?;
            println!("{user} is now {role} in {org}.");
        }
        Some(OrgsCommand::Revoke { org, user }) => {
            let _: Value = c
                .delete(&format!(
                    "/api/v1/orgs/{}/members/{}",
                    enc(&org),
                    enc(&user)
                ))
                .await?;
            println!("Removed {user} from {org}.");
        }
    }
    Ok(exit::OK)
}

async fn tokens(a: TokensArgs) -> Result<u8> {
    let c = client()?;
    match a.command {
        None => {
            let v: Value = c.get("/api/v1/tokens").await?;
            if a.json {
                print_json(&v)?;
            } else {
                println!("{:<38} {:<20} {:<27} STATE", "ID", "NAME", "EXPIRES");
                for t in v.as_array().cloned().unwrap_or_default() {
                    let state = if t["revokedAt"].is_null() {
                        "active"
                    } else {
                        "revoked"
                    };
                    let expires = t["expiresAt"].as_str().unwrap_or("never");
                    println!(
                        "{:<38} {:<20} {:<27} {state}",
                        s(&t, "id"),
                        s(&t, "name"),
                        expires
                    );
                }
            }
        }
        Some(TokensCommand::Create {
            name,
            days,
            user,
            json,
        }) => {
            let v: Value = c
                .post(
                    "/api/v1/tokens",
                    &json!({"name": name, "expires_in_days": days, "user": user}),
                )
                .await?;
            if json || a.json {
                print_json(&v)?;
            } else {
                println!("{}", s(&v, "token"));
                eprintln!("This is the only time the token is shown — store it now.");
            }
        }
        Some(TokensCommand::Revoke { id }) => {
            let _: Value = c.delete(&format!("/api/v1/tokens/{}", enc(&id))).await?;
            println!("Revoked token {id}.");
        }
    }
    Ok(exit::OK)
}

async fn webhook(a: WebhookArgs) -> Result<u8> {
    let c = client()?;
    let v: Value = c
        .get(&format!(
            "/api/v1/apps/{}/webhook{}",
            enc(&a.app),
            q(&a.org)
        ))
        .await?;
    if a.json {
        print_json(&v)?;
    } else {
        println!("GitHub  {}{}", c.server, s(&v, "github"));
        println!("GitLab  {}{}", c.server, s(&v, "gitlab"));
        println!("Generic {}{}", c.server, s(&v, "generic"));
        println!("Secret  {}", s(&v, "secret"));
        println!(
            "Pushes to {} deploy; other branches and tags are ignored.",
            s(&v, "branch")
        );
    }
    Ok(exit::OK)
}

async fn audit(a: AuditArgs) -> Result<u8> {
    let c = client()?;
    let path = format!(
        "/api/v1/audit{}",
        query(&[
            ("org", a.org.clone()),
            ("app", a.app.clone()),
            ("user", a.user.clone()),
            ("action", a.action.clone()),
            ("since", a.since.clone()),
            ("until", a.until.clone()),
            ("limit", Some(a.limit.to_string())),
            ("format", a.format.clone()),
        ])
    );
    if a.format.is_some() {
        print!("{}", c.get_text(&path).await?);
        return Ok(exit::OK);
    }
    let v: Value = c.get(&path).await?;
    if a.json {
        print_json(&v)?;
    } else {
        println!(
            "{:<27} {:<12} {:<14} {:<16} {:<14} DETAILS",
            "WHEN", "ORG", "APP", "USER", "ACTION"
        );
        for r in v.as_array().cloned().unwrap_or_default() {
            println!(
                "{:<27} {:<12} {:<14} {:<16} {:<14} {}",
                s(&r, "timestamp"),
                s(&r, "org"),
                s(&r, "app"),
                s(&r, "userId"),
                s(&r, "action"),
                r["details"]
            );
        }
    }
    Ok(exit::OK)
}

fn build(a: BuildArgs) -> Result<u8> {
    let BuildCommand::Plan { path, json } = a.command;
    let dir = path.unwrap_or_else(|| PathBuf::from("."));
    let m = match hanzo_manifest::load(&dir) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{e}");
            return Ok(exit::FAILED);
        }
    };
    let mut settings = hanzo_build::BuildSettings::default();
    settings.apply_env(std::env::vars());
    settings.ca_bundle = std::env::var_os("HANZO_BUILD_CA_BUNDLE").map(PathBuf::from);
    let plan = hanzo_build::plan(&m, &dir, &settings).map_err(|e| anyhow::anyhow!("{e}"))?;
    if json {
        print_json(&serde_json::to_value(&plan)?)?;
        return Ok(exit::OK);
    }
    println!("# runtime: {}", plan.runtime.family());
    println!(
        "# Dockerfile: {}",
        if plan.generated {
            "generated by Hanzo Platform"
        } else {
            "yours"
        }
    );
    println!("# base images: {}", plan.base_images.join(", "));
    println!(
        "# network during the build: {}, timeout: {}s",
        match plan.network {
            hanzo_manifest::BuildNetwork::None => "none",
            hanzo_manifest::BuildNetwork::Default => "default",
        },
        plan.timeout.as_secs()
    );
    print!("{}", plan.dockerfile);
    Ok(exit::OK)
}

fn manifest(a: ManifestArgs) -> Result<u8> {
    let dir_of = |p: Option<PathBuf>| -> PathBuf {
        match p {
            Some(p) if p.is_file() => p
                .parent()
                .map(|d| d.to_path_buf())
                .unwrap_or_else(|| PathBuf::from(".")),
            Some(p) => p,
            None => PathBuf::from("."),
        }
    };
    match a.command {
        ManifestCommand::Check { path } => match hanzo_manifest::load(&dir_of(path)) {
            Ok(m) => {
                println!(
                    "hanzo.yaml is valid: {}/{} ({} service(s)).",
                    m.org,
                    m.name,
                    m.services.len()
                );
                Ok(exit::OK)
            }
            Err(e) => {
                eprintln!("{e}");
                Ok(exit::FAILED)
            }
        },
        ManifestCommand::Explain { path } => match hanzo_manifest::load(&dir_of(path)) {
            Ok(m) => {
                print!("{}", hanzo_manifest::explain(&m));
                Ok(exit::OK)
            }
            Err(e) => {
                eprintln!("{e}");
                Ok(exit::FAILED)
            }
        },
        ManifestCommand::Schema => {
            print_json(&hanzo_manifest::schema())?;
            Ok(exit::OK)
        }
    }
}
