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
    /// Check, explain or describe hanzo.yaml.
    Manifest(ManifestArgs),
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
        Command::Manifest(a) => manifest(a),
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

async fn login(a: LoginArgs) -> Result<u8> {
    let mut cfg = CliConfig::load()?;
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
            eprint!("API token: ");
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
                eprint!(
                    "Delete {name}, its instances and its deployment history? Type the name to confirm: "
                );
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
            println!(
                "  {:<32} {:<8} {:<16} {}",
                s(i, "name"),
                s(i, "state"),
                s(i, "address"),
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
            d["number"],
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
        println!("Scaling {} to {} instance(s).", a.app, a.instances);
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
