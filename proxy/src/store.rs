//! The active configuration. Readers take one consistent snapshot per request (`load`);
//! writers build a new IR off the request path and swap it in whole, or reject it whole.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use agora_proto::resource::Resource;
use arc_swap::ArcSwap;
use tokio::sync::watch;

use crate::backend::StateRegistry;
use crate::error::Result;
use crate::ir::{self, Ir};

/// Holds the current IR and tells subscribers (listener manager, health checker) about swaps.
pub struct Store {
    current: ArcSwap<Ir>,
    ready: AtomicBool,
    version: AtomicU64,
    states: StateRegistry,
    port_map: ir::PortMap,
    changed: watch::Sender<u64>,
}

impl Default for Store {
    fn default() -> Self {
        Self {
            current: ArcSwap::from_pointee(Ir::default()),
            ready: AtomicBool::new(false),
            version: AtomicU64::new(0),
            states: StateRegistry::default(),
            port_map: ir::PortMap::new(),
            changed: watch::channel(0).0,
        }
    }
}

impl Store {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// A store whose listeners bind to other local ports than the config names
    /// (`--port-map 80=18080`); redirects still name the configured port.
    pub fn with_port_map(port_map: ir::PortMap) -> Arc<Self> {
        Arc::new(Self {
            port_map,
            ..Self::default()
        })
    }

    /// The current IR; hold it for the whole request so it sees one consistent config.
    pub fn load(&self) -> Arc<Ir> {
        self.current.load_full()
    }

    /// Builds and installs a new config. On error nothing changes and the last good config
    /// keeps serving.
    pub fn apply(&self, gateway: &str, resources: Vec<Resource>) -> Result<u64> {
        self.apply_shared(gateway, resources.into_iter().map(Arc::new).collect())
    }

    /// [`Store::apply`] with resources the caller keeps too (the xDS client's held set).
    pub fn apply_shared(&self, gateway: &str, resources: Vec<Arc<Resource>>) -> Result<u64> {
        let ir = ir::build_with(gateway, resources, &self.states, &self.port_map)?;
        let old = self.current.swap(Arc::new(ir));
        // Freeing a large config takes a while: not on the caller's time (the xDS ACK, a
        // file reload), and not on a request's, which may hold the last reference.
        if Arc::strong_count(&old) == 1 {
            let _ = std::thread::Builder::new()
                .name("agora-ir-drop".into())
                .spawn(move || drop(old));
        }
        self.ready.store(true, Ordering::Release);
        let v = self.version.fetch_add(1, Ordering::AcqRel) + 1;
        self.changed.send_replace(v);
        Ok(v)
    }

    /// Whether a config has been loaded (`/readyz`).
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// A receiver that wakes on every successful swap.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}
