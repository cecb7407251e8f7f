//! The Docker Engine as the server sees it: connected on first use and again
//! after a failure, so the control plane starts (and answers "start dockerd")
//! while Docker is down, and picks it up once it runs.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use hanzo_build::{BuildSettings, Builder};
use hanzo_runtime::docker::DockerTarget;
use hanzo_runtime::{Instance, InstanceSpec, Result, RuntimeError, Selector, Target};

pub struct Engine {
    settings: BuildSettings,
    scope: String,
    connected: RwLock<Option<(Arc<DockerTarget>, Arc<Builder>)>>,
}

impl Engine {
    pub fn new(settings: BuildSettings, scope: &str) -> Engine {
        Engine {
            settings,
            scope: scope.to_string(),
            connected: RwLock::new(None),
        }
    }

    fn connect(&self) -> Result<(Arc<DockerTarget>, Arc<Builder>)> {
        if let Ok(guard) = self.connected.read()
            && let Some(c) = guard.as_ref()
        {
            return Ok(c.clone());
        }
        let target = DockerTarget::connect()?.with_scope(&self.scope);
        let builder = Builder::new(target.client().clone(), self.settings.clone());
        let pair = (Arc::new(target), Arc::new(builder));
        if let Ok(mut guard) = self.connected.write() {
            *guard = Some(pair.clone());
        }
        Ok(pair)
    }

    /// The Docker target, connecting if needed.
    pub fn target(&self) -> Result<Arc<DockerTarget>> {
        self.connect().map(|(t, _)| t)
    }

    /// The image builder, connecting if needed.
    pub fn builder(&self) -> Result<Arc<Builder>> {
        self.connect().map(|(_, b)| b)
    }

    /// Forget the connection after the engine stopped answering.
    fn reset_on_unreachable<T>(&self, r: Result<T>) -> Result<T> {
        if let Err(RuntimeError::Unreachable { .. }) = &r
            && let Ok(mut guard) = self.connected.write()
        {
            *guard = None;
        }
        r
    }
}

#[async_trait]
impl Target for Engine {
    async fn ping(&self) -> Result<()> {
        let r = match self.target() {
            Ok(t) => t.ping().await,
            Err(e) => Err(e),
        };
        self.reset_on_unreachable(r)
    }
    async fn ensure_network(&self, org: &str) -> Result<()> {
        self.target()?.ensure_network(org).await
    }
    async fn start(&self, spec: &InstanceSpec) -> Result<Instance> {
        self.target()?.start(spec).await
    }
    async fn list(&self, selector: &Selector) -> Result<Vec<Instance>> {
        self.target()?.list(selector).await
    }
    async fn stop(&self, id: &str, grace: Duration) -> Result<()> {
        self.target()?.stop(id, grace).await
    }
    async fn logs(&self, id: &str, lines: usize) -> Result<Vec<String>> {
        self.target()?.logs(id, lines).await
    }
    async fn image_id(&self, image: &str) -> Result<Option<String>> {
        self.target()?.image_id(image).await
    }
    async fn ensure_image(&self, image: &str) -> Result<String> {
        self.target()?.ensure_image(image).await
    }
    async fn restart(&self, id: &str, grace: Duration) -> Result<()> {
        self.target()?.restart(id, grace).await
    }
}
