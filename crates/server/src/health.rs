//! Health after promotion. The monitor checks every instance of every serving
//! deployment at its service's `interval`; after `retries` failures in a row
//! the instance is taken out of the proxy and restarted in place, and its
//! restart is counted. Instances the reconciler has to replace again and again
//! (they exit right after start) are a crash loop: replacements back off and
//! the status shows it.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hanzo_core::{DeploymentStatus, EventType};
use hanzo_runtime::{InstanceState, Selector};
use tracing::{debug, warn};

use crate::reconciler::{check_once, manifest_of, services_of};
use crate::state::AppState;

/// Replacements within this window count towards a crash loop.
const CRASH_WINDOW: Duration = Duration::from_secs(300);
/// This many replacements within the window is a crash loop.
const CRASH_LOOP_AFTER: usize = 3;

#[derive(Debug, Default)]
struct Entry {
    replacements: VecDeque<Instant>,
    restarts: u32,
    failures: u32,
    last_check: Option<Instant>,
    unhealthy: bool,
    /// Marked unhealthy; restart once the proxy no longer routes to it.
    restart_pending: bool,
}

/// What the platform knows about the health of instances, by instance name.
#[derive(Debug, Default)]
pub struct HealthBook {
    entries: Mutex<HashMap<String, Entry>>,
    /// Instances being drained and stopped in the background, by id.
    stopping: Mutex<std::collections::HashSet<String>>,
}

/// An instance's health as shown to users.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthView {
    pub restarts: u32,
    pub crash_loop: bool,
    pub unhealthy: bool,
    pub consecutive_failures: u32,
}

impl HealthBook {
    fn with<T>(&self, name: &str, f: impl FnOnce(&mut Entry) -> T) -> T {
        let mut map = match self.entries.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(map.entry(name.to_string()).or_default())
    }

    fn recent(e: &mut Entry) -> usize {
        while e
            .replacements
            .front()
            .is_some_and(|t| t.elapsed() > CRASH_WINDOW)
        {
            e.replacements.pop_front();
        }
        e.replacements.len()
    }

    /// May the reconciler replace this (dead) instance now? In a crash loop,
    /// replacements back off exponentially: 10 s, 20 s, 40 s … up to 5 minutes.
    pub fn may_replace(&self, name: &str) -> bool {
        self.with(name, |e| {
            let n = Self::recent(e);
            if n < CRASH_LOOP_AFTER {
                return true;
            }
            let exp = (n - CRASH_LOOP_AFTER).min(5) as u32;
            let wait = Duration::from_secs(10 * 2u64.pow(exp)).min(CRASH_WINDOW);
            e.replacements.back().is_none_or(|t| t.elapsed() >= wait)
        })
    }

    pub fn note_replacement(&self, name: &str) {
        self.with(name, |e| {
            e.replacements.push_back(Instant::now());
            e.restarts += 1;
        });
    }

    pub fn forget_replacements(&self, name: &str) {
        self.with(name, |e| e.replacements.clear());
    }

    /// Marks instances as being drained and stopped by a background task.
    pub fn mark_stopping(&self, ids: impl IntoIterator<Item = String>) {
        if let Ok(mut s) = self.stopping.lock() {
            s.extend(ids);
        }
    }

    pub fn done_stopping(&self, ids: &[String]) {
        if let Ok(mut s) = self.stopping.lock() {
            for id in ids {
                s.remove(id);
            }
        }
    }

    /// Is a background task already draining and stopping this instance?
    pub fn is_stopping(&self, id: &str) -> bool {
        self.stopping
            .lock()
            .map(|s| s.contains(id))
            .unwrap_or(false)
    }

    pub fn is_unhealthy(&self, name: &str) -> bool {
        self.with(name, |e| e.unhealthy)
    }

    pub fn view(&self, name: &str) -> HealthView {
        self.with(name, |e| HealthView {
            restarts: e.restarts,
            crash_loop: Self::recent(e) >= CRASH_LOOP_AFTER,
            unhealthy: e.unhealthy,
            consecutive_failures: e.failures,
        })
    }
}

/// Runs the monitor until shutdown.
pub fn spawn_monitor(state: AppState) {
    tokio::spawn(async move {
        loop {
            if let Err(e) = monitor_pass(&state).await {
                debug!("health monitor pass skipped: {e:#}");
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = state.shutdown.cancelled() => return,
            }
        }
    });
}

async fn monitor_pass(state: &AppState) -> anyhow::Result<()> {
    for app in state.store.list_apps(None).await? {
        let Some(cur) = app.current_deployment_id else {
            continue;
        };
        if app.desired_deployment_id != Some(cur) || app.instances == 0 {
            continue; // a rollout is in charge
        }
        let d = state.store.get_deployment(cur).await?;
        if d.status != DeploymentStatus::Running {
            continue;
        }
        let manifest = manifest_of(&d)?;
        let services = services_of(&manifest);
        let instances = state
            .target
            .list(&Selector {
                deployment_id: Some(d.id.to_string()),
                ..Default::default()
            })
            .await?;
        for inst in instances
            .iter()
            .filter(|i| i.state == InstanceState::Running)
        {
            let Some(svc) = services.iter().find(|s| s.id == inst.service) else {
                continue;
            };
            let hc = &svc.spec.healthcheck;
            let due = state.health.with(&inst.name, |e| {
                e.last_check.is_none_or(|t| t.elapsed() >= hc.interval)
            });
            if !due {
                continue;
            }
            state
                .health
                .with(&inst.name, |e| e.last_check = Some(Instant::now()));
            match check_once(state, inst, svc, Instant::now() - Duration::from_secs(3600)).await {
                Ok(()) => {
                    let recovered = state.health.with(&inst.name, |e| {
                        e.failures = 0;
                        std::mem::replace(&mut e.unhealthy, false)
                    });
                    if recovered {
                        state.reconcile.notify_one();
                    }
                }
                Err(reason) => {
                    let failures = state.health.with(&inst.name, |e| {
                        e.failures += 1;
                        e.failures
                    });
                    if failures < hc.retries.max(1) {
                        continue;
                    }
                    warn!(instance = %inst.name, "failed {failures} health checks in a row ({reason}); restarting it");
                    let _ = state
                        .store
                        .add_event(
                            d.id,
                            EventType::HealthCheckFailed,
                            &format!("{} failed {failures} health checks in a row ({reason}); restarting it", inst.name),
                        )
                        .await;
                    state.health.with(&inst.name, |e| {
                        e.unhealthy = true;
                        e.failures = 0;
                        e.restart_pending = true;
                    });
                    // The reconciler's next pass takes it out of the proxy; the
                    // restart waits for that (below, on a later pass).
                    state.reconcile.notify_one();
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replacements_back_off_in_a_crash_loop() {
        let book = HealthBook::default();
        for _ in 0..CRASH_LOOP_AFTER {
            assert!(book.may_replace("x"));
            book.note_replacement("x");
        }
        assert!(book.view("x").crash_loop);
        assert!(!book.may_replace("x"), "the next replacement waits");
        assert_eq!(book.view("x").restarts, CRASH_LOOP_AFTER as u32);
        book.forget_replacements("x");
        assert!(book.may_replace("x"));
        assert!(!book.view("x").crash_loop);
    }
}
