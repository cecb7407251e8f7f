//! What every part of the control plane shares.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use hanzo_proxy::Proxy;
use hanzo_runtime::Target;
use hanzo_store::Store;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::config::Config;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub target: Arc<dyn Target>,
    /// The Docker Engine connection behind `target`, with the image builder.
    pub engine: Arc<crate::engine::Engine>,
    pub proxy: Arc<Proxy>,
    /// Wakes the reconciler (an app changed).
    pub reconcile: Arc<Notify>,
    /// Wakes the build workers (a build was queued).
    pub builds: Arc<Notify>,
    /// Cancellation of running builds, by deployment id.
    pub running_builds: Arc<Mutex<HashMap<Uuid, CancellationToken>>>,
    /// Key from which each application's webhook secret is derived.
    pub webhook_key: Arc<Vec<u8>>,
    /// Health of instances after promotion (failures, restarts, crash loops).
    pub health: Arc<crate::health::HealthBook>,
    /// Server shutdown.
    pub shutdown: CancellationToken,
}
