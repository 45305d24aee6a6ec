//! Watches the local config file and applies every change; a bad file is logged with the
//! field at fault and the last good config keeps serving.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};

use crate::config;
use crate::metrics::Metrics;
use crate::store::Store;

/// How often the file is re-read even without a change event.
pub const RECHECK: Duration = Duration::from_secs(5);

/// Loads `path` into the store; logs and counts the outcome. A file whose resources equal
/// the active ones (after reading referenced certificate files) changes nothing.
pub fn reload(path: &Path, store: &Store, metrics: &Metrics) -> crate::error::Result<u64> {
    let loaded = config::load_file(path);
    if let Ok(l) = &loaded {
        let current = store.load();
        if store.is_ready()
            && *current.gateway == *l.gateway
            && current.resources.len() == l.resources.len()
            && current
                .resources
                .iter()
                .zip(&l.resources)
                .all(|(a, b)| **a == *b)
        {
            return Ok(store.version());
        }
    }
    let result = loaded.and_then(|l| store.apply(&l.gateway, l.resources));
    match &result {
        Ok(v) => {
            metrics.config_reloads.with_label_values(&["ok"]).inc();
            metrics
                .config_version
                .set(i64::try_from(*v).unwrap_or(i64::MAX));
            tracing::info!(file = %path.display(), version = v, "config applied");
        }
        Err(e) => {
            metrics
                .config_reloads
                .with_label_values(&["rejected"])
                .inc();
            tracing::error!(file = %path.display(), error = %e, "config rejected; keeping the last good config");
        }
    }
    result
}

/// Starts a thread that reloads `path` whenever something in its directory changes (with a
/// short debounce so editors that write in several steps are applied once), and every
/// [`RECHECK`] regardless, so renewed certificate files elsewhere are picked up too. A file
/// that stays broken is reported once, not at every recheck.
pub fn spawn(path: PathBuf, store: Arc<Store>, metrics: Arc<Metrics>) -> notify::Result<()> {
    let (tx, rx) = std::sync::mpsc::channel();
    let mut watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
        if ev.is_ok() {
            let _ = tx.send(());
        }
    })?;
    // Watch the directory: editors and Kubernetes ConfigMaps replace the file rather than
    // write it in place.
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    watcher.watch(dir, RecursiveMode::NonRecursive)?;
    std::thread::Builder::new()
        .name("config-watch".into())
        .spawn(move || {
            let _watcher = watcher;
            let mut last_error: Option<String> = None;
            loop {
                match rx.recv_timeout(RECHECK) {
                    Ok(()) => {
                        std::thread::sleep(Duration::from_millis(50));
                        while rx.try_recv().is_ok() {}
                    }
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
                }
                if let Err(e) = config::load_file(&path)
                    && last_error.as_deref() == Some(e.to_string().as_str())
                {
                    continue;
                }
                last_error = reload(&path, &store, &metrics).err().map(|e| e.to_string());
            }
        })
        .map(|_| ())
        .map_err(|e| notify::Error::generic(&e.to_string()))
}
