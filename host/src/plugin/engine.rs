//! The shared wasmtime engine: configuration, limits, the epoch ticker and the
//! precompiled-component cache.

use anyhow::Context as _;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::state::CallState;

/// How often the epoch ticker advances the engine's epoch: the granularity of deadlines.
const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Limits on what a plugin call may use. Each is enforced where noted.
#[derive(Clone, Debug)]
pub struct RuntimeLimits {
    /// Linear memory one instance may grow to (store limiter; the pool's slot size).
    /// Default 64 MiB: room for a Python or JavaScript guest (BENCHMARKS.md has what
    /// each language's hello uses).
    /// Strings a hook returns live in this memory, so this also caps output size.
    pub memory_bytes: usize,
    /// Wall-clock time one hook call may run (epoch interruption, checked every
    /// `EPOCH_TICK`). Default 1 s: hooks are pure functions of their input.
    pub call_deadline: Duration,
    /// Instances that may exist at once across all plugins (pooling allocator): one per
    /// running hook call plus the pools' idle ones. Default 256.
    pub max_instances: u32,
    /// Which compiler turns components into machine code.
    pub compiler: Compiler,
    /// Hook calls one instance may serve before it is dropped; 1 gives every call a
    /// fresh instance. Default 1000. See [`super::PluginInstance`] for the policy.
    pub instance_reuse: u32,
    /// `reads.get` and `reads.list` calls one hook call may make. Default 1,000 (a
    /// hook that lists in a loop ends at once with a clear error).
    pub read_calls: usize,
    /// Objects one hook call may read through the `reads` import. Default 10,000.
    pub read_objects: usize,
    /// Bytes (of JSON) one hook call may read. Default 32 MiB (half the default memory).
    pub read_bytes: usize,
    /// Idle instances one plugin keeps for reuse. An instance is checked out for one
    /// hook call at a time, so about as many exist as calls run at once. Default: twice
    /// the CPUs, between 4 and 16 (idle instances hold slots of the shared pooling
    /// allocator: a Python instance takes 14 of its `4 × max_instances` core instances).
    pub pool_size: usize,
    /// Hook calls of one plugin running at once; more wait up to the hook deadline,
    /// then answer 429. Default 32.
    pub max_concurrent: usize,
    /// Lines per second one plugin may write to the server log. Default 100.
    pub log_lines_per_second: u32,
    /// When a plugin build is quarantined.
    pub quarantine: super::QuarantinePolicy,
    /// Whether a new build must pass the upgrade gate.
    pub upgrade_gate: super::GateMode,
}

impl RuntimeLimits {
    /// The budget of a plugin without a settings file.
    pub fn budget(&self) -> super::Budget {
        super::Budget {
            memory_bytes: self.memory_bytes,
            deadline: self.call_deadline,
            max_concurrent: self.max_concurrent,
            log_lines_per_second: self.log_lines_per_second,
            quarantine: self.quarantine,
            upgrade_gate: self.upgrade_gate,
        }
    }
}

/// The code generator: Cranelift optimizes (the default: hooks run fastest);
/// Winch, wasmtime's baseline compiler, compiles ~4-5x faster into slower code, for
/// an edit-and-reload loop (`make dev` uses it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Compiler {
    #[default]
    Cranelift,
    Winch,
}

impl Default for RuntimeLimits {
    fn default() -> Self {
        RuntimeLimits {
            memory_bytes: 64 << 20,
            call_deadline: Duration::from_secs(1),
            max_instances: 256,
            compiler: Compiler::default(),
            instance_reuse: 1000,
            read_calls: 1_000,
            read_objects: 10_000,
            read_bytes: 32 << 20,
            pool_size: std::thread::available_parallelism()
                .map_or(4, |n| n.get() * 2)
                .clamp(4, 16),
            max_concurrent: 32,
            log_lines_per_second: 100,
            quarantine: super::QuarantinePolicy::default(),
            upgrade_gate: super::GateMode::default(),
        }
    }
}

/// The engine every plugin is compiled and run with. Cheap to clone.
#[derive(Clone)]
pub struct PluginEngine {
    pub(crate) engine: Engine,
    pub(crate) linker: Arc<Linker<CallState>>,
    pub(crate) limits: RuntimeLimits,
    cache_dir: Option<PathBuf>,
}

impl PluginEngine {
    /// Create the engine. `cache_dir`, when given, keeps precompiled components so that
    /// a restart does not compile again.
    pub fn new(limits: RuntimeLimits, cache_dir: Option<PathBuf>) -> anyhow::Result<Self> {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(limits.max_instances)
            .total_core_instances(limits.max_instances * 4)
            .total_memories(limits.max_instances * 2)
            .total_tables(limits.max_instances * 4)
            .max_memory_size(limits.memory_bytes)
            // A reused slot keeps up to 2 MiB of the pages the last instance touched
            // (a Rust plugin's stack and heap fit) and resets only the dirty ones,
            // found with Linux's PAGEMAP_SCAN: no page faults on the next request
            // (BENCHMARKS.md: a create's hooks, before and after).
            .linear_memory_keep_resident(2 << 20)
            .table_keep_resident(4 << 10)
            .pagemap_scan(wasmtime::Enabled::Auto);
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
            .memory_init_cow(true)
            .strategy(match limits.compiler {
                Compiler::Cranelift => wasmtime::Strategy::Cranelift,
                Compiler::Winch => wasmtime::Strategy::Winch,
            });
        let engine = Engine::new(&config)
            .map_err(anyhow::Error::from)
            .context("creating the wasmtime engine")?;

        let mut linker = Linker::<CallState>::new(&engine);
        // WASI is linked only because Rust's wasm32-wasip2 std imports it; each call's
        // WasiCtx is empty (no dirs, env, args, sockets).
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(anyhow::Error::from)
            .context("linking WASI")?;
        super::world::add_to_linker(&mut linker)
            .map_err(anyhow::Error::from)
            .context("linking the host interfaces")?;

        // Deadlines are counted in epoch ticks; one thread ticks for every engine clone.
        let weak = engine.weak();
        std::thread::Builder::new()
            .name("wasm-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })
            .context("starting the epoch ticker")?;

        if let Some(dir) = &cache_dir {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating the plugin cache {}", dir.display()))?;
        }
        Ok(PluginEngine {
            engine,
            linker: Arc::new(linker),
            limits,
            cache_dir,
        })
    }

    /// A deadline in epoch ticks (at least one).
    pub(crate) fn deadline_ticks(deadline: Duration) -> u64 {
        (deadline.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64 + 1
    }

    /// Compile a component, or load it from the precompiled cache. The cache key is the
    /// engine's compatibility hash and the file's SHA-256, so a new wasmtime or new flags
    /// never load a stale artifact.
    pub fn compile(&self, bytes: &[u8], digest: &str) -> anyhow::Result<(Component, bool)> {
        let Some(dir) = &self.cache_dir else {
            return Ok((Component::new(&self.engine, bytes)?, false));
        };
        let path = dir.join(format!("{}-{digest}.cwasm", self.compat_key()));
        // Read into memory rather than mmap the file: someone rewriting a cache entry
        // in place must not be able to pull pages from under running code (SIGBUS).
        if let Ok(cached) = std::fs::read(&path) {
            // SAFETY: `deserialize` checks the header (wasmtime version, engine flags)
            // and rejects foreign or corrupt files; entries are written atomically by
            // this function from `precompile_component`.
            match unsafe { Component::deserialize(&self.engine, &cached) } {
                Ok(c) => return Ok((c, true)),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "ignoring a bad cache entry")
                }
            }
        }
        let compiled = self.engine.precompile_component(bytes)?;
        write_atomically(&path, &compiled)
            .with_context(|| format!("writing the plugin cache entry {}", path.display()))?;
        // SAFETY: produced by this engine just above.
        let component = unsafe { Component::deserialize(&self.engine, &compiled)? };
        Ok((component, false))
    }

    fn compat_key(&self) -> String {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.engine.precompile_compatibility_hash().hash(&mut h);
        format!("{:016x}", h.finish())
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
