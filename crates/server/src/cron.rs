//! `cron` services: a container per tick of the schedule, started from the
//! serving deployment's image with the service's command, run to completion,
//! its exit code and last lines recorded as a run. A tick that comes while the
//! previous run of the same service still runs is recorded as `skipped`: runs
//! never overlap. The scheduler only fires ticks that come after it started,
//! so a restart does not replay missed ones; runs the restart interrupted are
//! finished from what the engine reports.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use chrono::{DateTime, Utc};
use hanzo_core::{Application, CronRun, Deployment, DeploymentStatus};
use hanzo_manifest::{Manifest, ServiceKind};
use hanzo_runtime::{Instance, InstanceSpec, InstanceState, Selector};
use tracing::{debug, info, warn};
use uuid::Uuid;

use crate::reconciler::{manifest_of, services_of, shell};
use crate::state::AppState;

/// A run still going after this long is stopped and recorded as failed.
const MAX_RUN: Duration = Duration::from_secs(6 * 3600);
/// Lines of output kept with a run.
const TAIL_LINES: usize = 50;

/// Name of the container of a run.
fn run_name(app: &Application, service: &str, run: Uuid) -> String {
    let id = run.simple().to_string();
    format!("{}-{}-{service}-run-{}", app.org, app.name, &id[..12])
}

/// Is this instance a cron run (the reconciler leaves those alone)?
pub fn is_cron_instance(inst: &Instance) -> bool {
    inst.service.starts_with("cron")
}

fn parse(schedule: &str) -> Option<croner::Cron> {
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Disallowed)
        .year(croner::parser::Year::Disallowed)
        .build()
        .parse(schedule)
        .ok()
}

/// The next tick strictly after `after`.
pub fn next_tick(schedule: &str, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    parse(schedule)?.find_next_occurrence(&after, false).ok()
}

type Key = (Uuid, String);

#[derive(Default)]
struct Scheduler {
    /// Per (app, service): the time up to which ticks have been handled.
    handled_until: HashMap<Key, DateTime<Utc>>,
    /// Per (app, service): a run is going.
    running: HashSet<Key>,
}

pub fn spawn(state: AppState) {
    let sched = Arc::new(Mutex::new(Scheduler::default()));
    tokio::spawn(async move {
        if let Err(e) = recover(&state, &sched).await {
            warn!("cannot finish the cron runs a restart interrupted: {e:#}");
        }
        loop {
            if let Err(e) = tick(&state, &sched).await {
                debug!("cron pass skipped: {e:#}");
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = state.shutdown.cancelled() => return,
            }
        }
    });
}

/// Runs marked running when the server stopped: wait for their containers again,
/// or record them as failed when the container is gone.
async fn recover(state: &AppState, sched: &Arc<Mutex<Scheduler>>) -> Result<()> {
    for run in state.store.cron_runs_in_progress().await? {
        let Ok(app) = state.store.get_app_by_id(run.app_id).await else {
            continue;
        };
        let name = run_name(&app, &run.service, run.id);
        let found = state
            .target
            .list(&Selector {
                deployment_id: Some(run.deployment_id.to_string()),
                ..Default::default()
            })
            .await?
            .into_iter()
            .find(|i| i.name == name);
        match found {
            Some(inst) => {
                if let Ok(mut s) = sched.lock() {
                    s.running.insert((app.id, run.service.clone()));
                }
                let (state, sched) = (state.clone(), sched.clone());
                tokio::spawn(async move { wait_and_record(&state, &sched, &app, run, inst).await });
            }
            None => {
                state
                    .store
                    .finish_cron_run(
                        run.id,
                        "failed",
                        None,
                        "the run's container is gone: the server restarted during the run",
                    )
                    .await?;
            }
        }
    }
    Ok(())
}

async fn tick(state: &AppState, sched: &Arc<Mutex<Scheduler>>) -> Result<()> {
    let now = Utc::now();
    for app in state.store.list_apps(None).await? {
        let Some(cur) = app.current_deployment_id else {
            continue;
        };
        if app.instances == 0 {
            continue; // stopped: cron does not fire either
        }
        let d = state.store.get_deployment(cur).await?;
        if d.status != DeploymentStatus::Running {
            continue;
        }
        let manifest = manifest_of(&d)?;
        for svc in services_of(&manifest)
            .into_iter()
            .filter(|s| s.spec.kind == ServiceKind::Cron)
        {
            let Some(schedule) = svc.spec.schedule.as_deref() else {
                continue;
            };
            let key = (app.id, svc.id.clone());
            let due = {
                let Ok(mut s) = sched.lock() else { continue };
                let from = *s.handled_until.entry(key.clone()).or_insert(now);
                match next_tick(schedule, from) {
                    Some(t) if t <= now => {
                        s.handled_until.insert(key.clone(), now);
                        Some((t, s.running.contains(&key)))
                    }
                    _ => None,
                }
            };
            let Some((at, busy)) = due else { continue };
            if busy {
                info!(app = %app.name, service = %svc.id, "cron tick skipped: the previous run is still going");
                state
                    .store
                    .start_cron_run(app.id, d.id, &svc.id, at, "skipped")
                    .await?;
                continue;
            }
            if let Ok(mut s) = sched.lock() {
                s.running.insert(key.clone());
            }
            let (state, sched, app, d, manifest) = (
                state.clone(),
                sched.clone(),
                app.clone(),
                d.clone(),
                manifest.clone(),
            );
            let service = svc.id.clone();
            tokio::spawn(async move {
                if let Err(e) = fire(&state, &sched, &app, &d, &manifest, &service, at).await {
                    warn!(app = %app.name, %service, "cron run failed to start: {e:#}");
                    if let Ok(mut s) = sched.lock() {
                        s.running.remove(&(app.id, service));
                    }
                }
            });
        }
    }
    Ok(())
}

async fn fire(
    state: &AppState,
    sched: &Arc<Mutex<Scheduler>>,
    app: &Application,
    d: &Deployment,
    manifest: &Manifest,
    service: &str,
    at: DateTime<Utc>,
) -> Result<()> {
    let svc = services_of(manifest)
        .into_iter()
        .find(|s| s.id == service)
        .ok_or_else(|| anyhow::anyhow!("no service {service}"))?;
    let run = state
        .store
        .start_cron_run(app.id, d.id, service, at, "running")
        .await?;
    let env = crate::reconciler::env_for(state, app, manifest).await?;
    let spec = InstanceSpec {
        name: run_name(app, service, run.id),
        org: app.org.clone(),
        app: app.name.clone(),
        service: service.to_string(),
        deployment_id: d.id.to_string(),
        image: d.image_tag.clone(),
        env,
        port: None,
        command: svc.spec.command.as_deref().map(shell),
        memory_bytes: i64::try_from(manifest.deploy.memory_bytes).ok(),
        nano_cpus: Some(i64::from(manifest.deploy.cpu_millis) * 1_000_000),
        extra_labels: Default::default(),
        run_once: true,
    };
    state.target.ensure_network(&app.org).await?;
    let inst = match state.target.start(&spec).await {
        Ok(i) => i,
        Err(e) => {
            state
                .store
                .finish_cron_run(
                    run.id,
                    "failed",
                    None,
                    &format!("the run could not start: {e}"),
                )
                .await?;
            if let Ok(mut s) = sched.lock() {
                s.running.remove(&(app.id, service.to_string()));
            }
            return Ok(());
        }
    };
    wait_and_record(state, sched, app, run, inst).await;
    Ok(())
}

/// Waits for the run's container to exit, records the result, removes it.
async fn wait_and_record(
    state: &AppState,
    sched: &Arc<Mutex<Scheduler>>,
    app: &Application,
    run: CronRun,
    inst: Instance,
) {
    let started = tokio::time::Instant::now();
    let selector = Selector {
        deployment_id: Some(run.deployment_id.to_string()),
        ..Default::default()
    };
    let exit = loop {
        match state.target.list(&selector).await {
            Ok(list) => match list.into_iter().find(|i| i.id == inst.id) {
                Some(i) if matches!(i.state, InstanceState::Exited | InstanceState::Dead) => {
                    break i.exit_code;
                }
                Some(_) => {}
                None => break None,
            },
            Err(e) => debug!("cannot inspect cron run {}: {e}", inst.name),
        }
        if started.elapsed() > MAX_RUN || state.shutdown.is_cancelled() {
            if state.shutdown.is_cancelled() {
                return; // finished by `recover` at the next start
            }
            break None;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let tail = state
        .target
        .logs(&inst.id, TAIL_LINES)
        .await
        .unwrap_or_default()
        .join("\n");
    let status = if exit == Some(0) {
        "succeeded"
    } else {
        "failed"
    };
    if let Err(e) = state
        .store
        .finish_cron_run(run.id, status, exit, &tail)
        .await
    {
        warn!(app = %app.name, "cannot record the end of a cron run: {e}");
    }
    if let Err(e) = state.target.stop(&inst.id, state.config.stop_grace).await {
        warn!(app = %app.name, "cannot remove the container of a cron run: {e}");
    }
    if let Ok(mut s) = sched.lock() {
        s.running.remove(&(app.id, run.service.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_ticks_follow_the_schedule() {
        let t0: DateTime<Utc> = "2026-12-03T10:07:30Z".parse().expect("time");
        assert_eq!(
            next_tick("* * * * *", t0).map(|t| t.to_rfc3339()),
            Some("2026-12-03T10:08:00+00:00".into())
        );
        assert_eq!(
            next_tick("0 */6 * * *", t0).map(|t| t.to_rfc3339()),
            Some("2026-12-03T12:00:00+00:00".into())
        );
        assert_eq!(next_tick("not a schedule", t0), None);
    }
}
