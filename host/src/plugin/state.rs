//! The runtime's shared state, a leaf: the store state of one instance
//! ([`CallState`], what the engine's linker and every instance see), the pool of idle
//! instances and a plugin's cost counters. The engine, the loaded plugin, its
//! instances and the catalog depend on this module; it depends on none of them.

use wasmtime::component::ResourceTable;
use wasmtime::{Store, StoreLimits};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::output::GuestOutput;
use super::reads::ReadScope;
use super::world::{v0_1, v0_2, Exports};

/// Counters of a plugin's cost: what a request pays for running Wasm.
#[derive(Default, Debug)]
pub struct PluginStats {
    /// Instances created (a reused one counts once).
    pub instances: std::sync::atomic::AtomicU64,
    /// Hook calls that ran on an instance an earlier call created.
    pub reuses: std::sync::atomic::AtomicU64,
    pub instantiate_nanos: std::sync::atomic::AtomicU64,
    /// Reads (`reads.get` and `reads.list` calls) its hooks made, and what they returned.
    pub reads: std::sync::atomic::AtomicU64,
    pub read_objects: std::sync::atomic::AtomicU64,
    pub read_bytes: std::sync::atomic::AtomicU64,
}

impl PluginStats {
    pub(crate) fn record(
        counter: &std::sync::atomic::AtomicU64,
        nanos: &std::sync::atomic::AtomicU64,
        since: std::time::Instant,
    ) {
        use std::sync::atomic::Ordering::Relaxed;
        counter.fetch_add(1, Relaxed);
        nanos.fetch_add(since.elapsed().as_nanos() as u64, Relaxed);
    }
}

/// The state of one instance's store.
pub struct CallState {
    pub(super) wasi: WasiCtx,
    pub(super) table: ResourceTable,
    pub(super) limits: StoreLimits,
    pub(super) plugin: std::sync::Arc<str>,
    /// The plugin's log budget.
    pub(super) log: std::sync::Arc<super::budget::LogLimiter>,
    /// Set while a hook that may read runs.
    pub(super) reads: Option<ReadScope>,
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl CallState {
    fn log(&self, level: tracing::Level, message: &str) {
        if !self.log.allow() {
            return;
        }
        let plugin = &*self.plugin;
        match level {
            tracing::Level::TRACE => tracing::trace!(plugin, "{message}"),
            tracing::Level::DEBUG => tracing::debug!(plugin, "{message}"),
            tracing::Level::INFO => tracing::info!(plugin, "{message}"),
            tracing::Level::WARN => tracing::warn!(plugin, "{message}"),
            tracing::Level::ERROR => tracing::error!(plugin, "{message}"),
        }
    }
}

impl v0_2::wasm_apiserver::plugin::host::Host for CallState {
    fn log(
        &mut self,
        level: v0_2::wasm_apiserver::plugin::host::Level,
        message: String,
    ) -> wasmtime::Result<()> {
        use v0_2::wasm_apiserver::plugin::host::Level as L;
        let level = match level {
            L::Trace => tracing::Level::TRACE,
            L::Debug => tracing::Level::DEBUG,
            L::Info => tracing::Level::INFO,
            L::Warn => tracing::Level::WARN,
            L::Error => tracing::Level::ERROR,
        };
        CallState::log(self, level, &message);
        Ok(())
    }
}

impl v0_1::wasm_apiserver::plugin::host::Host for CallState {
    fn log(&mut self, level: v0_1::wasm_apiserver::plugin::host::Level, message: String) {
        use v0_1::wasm_apiserver::plugin::host::Level as L;
        let level = match level {
            L::Trace => tracing::Level::TRACE,
            L::Debug => tracing::Level::DEBUG,
            L::Info => tracing::Level::INFO,
            L::Warn => tracing::Level::WARN,
            L::Error => tracing::Level::ERROR,
        };
        CallState::log(self, level, &message);
    }
}

/// An instantiated plugin: its store, its exports and how many requests it served.
pub(crate) struct Live {
    pub(super) store: Store<CallState>,
    pub(super) bindings: Exports,
    pub(super) stderr: GuestOutput,
    pub(super) uses: u32,
}

/// The idle instances of one plugin build (see [`PluginInstance`] for the policy).
#[derive(Default)]
pub(crate) struct InstancePool {
    pub(super) idle: std::sync::Mutex<Vec<Live>>,
}

impl InstancePool {
    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Live>> {
        crate::sync::lock(&self.idle)
    }

    pub(super) fn take(&self) -> Option<Live> {
        self.lock().pop()
    }

    pub(super) fn give_back(&self, live: Live, size: usize) {
        let mut idle = self.lock();
        if idle.len() < size {
            idle.push(live);
        }
    }

    /// Idle instances right now (for tests and metrics).
    pub(crate) fn idle(&self) -> usize {
        self.lock().len()
    }
}
