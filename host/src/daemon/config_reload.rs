//! Config reloads (SIGHUP) off the daemon's loop: reading the config and
//! compiling its plugins can take seconds, and the loop keeps syncing,
//! answering and stopping meanwhile.

use crate::config::Resolved;
use crate::mapping::Engine;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Asks for reloads and receives the engines they build.
pub(super) struct Reloads {
    ask: mpsc::Sender<()>,
    /// The engine of each reload that succeeded, in order.
    pub(super) built: mpsc::Receiver<Arc<Engine>>,
}

impl Reloads {
    /// Starts the task that reloads `path`, one reload at a time.
    pub(super) fn start(path: Option<PathBuf>) -> Reloads {
        // One request waits at most: asks while one waits add nothing, and
        // the one waiting reads the file as it is when its turn comes.
        let (ask, mut asked) = mpsc::channel::<()>(1);
        let (done, built) = mpsc::channel(1);
        tokio::spawn(async move {
            while asked.recv().await.is_some() {
                let path = path.clone();
                let engine = tokio::task::spawn_blocking(move || reload(path.as_ref())).await;
                match engine {
                    Ok(Some(engine)) => {
                        if done.send(engine).await.is_err() {
                            break;
                        }
                    }
                    Ok(None) => {}
                    Err(e) => tracing::error!("config reload failed: {e}"),
                }
            }
        });
        Reloads { ask, built }
    }

    /// Asks for a reload (one more, if one runs now).
    pub(super) fn request(&self) {
        let _ = self.ask.try_send(());
    }
}

/// Re-reads the config and builds its engine; `None` (and an error log) if
/// either is invalid, so the old plugins and settings stay.
fn reload(path: Option<&PathBuf>) -> Option<Arc<Engine>> {
    let Some(path) = path else {
        tracing::warn!("reload asked, but the connector runs without a config file");
        return None;
    };
    let loaded = Resolved::load(Some(path.as_path()))
        .map_err(|e| e.to_string())
        .and_then(|c| Engine::new(&c.mapping, c.render).map_err(|e| e.to_string()));
    match loaded {
        Ok(engine) => {
            tracing::info!(config = %path.display(), "config reloaded: new plugins and settings in use");
            Some(Arc::new(engine))
        }
        Err(e) => {
            tracing::error!("reload refused, the old plugins and settings stay: {e}");
            None
        }
    }
}
