//! One request's instance of a plugin, and its typed hooks.

use serde_json::Value;
use std::sync::Arc;
use wasmtime::component::ResourceTable;
use wasmtime::{Store, StoreLimitsBuilder, Trap};
use wasmtime_wasi::WasiCtxBuilder;

use super::engine::PluginEngine;
use super::loaded::Plugin;
use super::output::{GuestOutput, Stream};
use super::reads::{ReadBudgetExceeded, ReadScope, ReadSource, ReadsSpent};
use super::state::{CallState, Live};
use super::wit;
use super::world::Exports;
use super::{PluginError, Result};

pub use wit::{
    Admission, AdmissionRequest, ComputeRequest, Denial, FieldError, FieldErrorType, Operation,
    Request as RequestInfo, SubresourceRequest, UserInfo, Validation,
};

/// An object as the JSON text hooks take. `serde_json::to_string` writes straight
/// into a buffer; `Value`'s `Display` goes through `fmt` and is several times slower.
fn json_text(obj: &Value) -> String {
    serde_json::to_string(obj).expect("JSON values serialize")
}

impl Plugin {
    /// An instance for one request's hooks: an idle one when the pool has it, else a
    /// fresh one. A quarantined build has none: the error says why.
    pub fn instance(&self) -> Result<PluginInstance<'_>> {
        if let Some(q) = self.health.quarantined() {
            return Err(PluginError::Quarantined {
                plugin: self.name.to_string(),
                cause: q.cause,
            });
        }
        PluginInstance::new(self)
    }

    /// A stored object in this build's storage version: objects written before a
    /// storage version migration finished are still in the old one.
    /// Call it where blocking is allowed (`block_in_place`) when
    /// [`Self::in_another_version`] says a hook will run.
    pub fn in_storage_version(&self, obj: Value) -> Result<Value> {
        if !self.in_another_version(&obj) {
            return Ok(obj);
        }
        let mut out = self
            .instance()?
            .convert(&[obj], &self.resource.storage_version)?;
        Ok(out.remove(0))
    }

    /// Whether a stored object is in another version than the storage version (no
    /// allocation: this runs on every object read).
    pub fn in_another_version(&self, obj: &Value) -> bool {
        let r = &self.resource;
        let Some(v) = obj["apiVersion"].as_str() else {
            return true;
        };
        match v.rsplit_once('/') {
            Some((group, version)) => group != r.group || version != r.storage_version,
            None => !r.group.is_empty() || v != r.storage_version,
        }
    }

    /// Whether this build is quarantined (its hooks are not called).
    pub fn is_quarantined(&self) -> bool {
        self.health.is_quarantined()
    }

    /// Instances waiting in this plugin's pool.
    pub fn idle_instances(&self) -> usize {
        self.pool.idle()
    }
}

/// The hooks of one request.
///
/// Isolation policy: each hook call runs on an instance checked out of the plugin's
/// pool for that call only (never across the request's storage I/O), or on a fresh one
/// when none is idle. An instance serves at most [`RuntimeLimits::instance_reuse`] calls
/// (1 = a fresh instance for every call) of one plugin build, one call at a time; the
/// pool keeps at most [`RuntimeLimits::pool_size`] idle. It is dropped, never reused, after any trap, missed deadline, memory-limit
/// hit or malformed result; a hook's deliberate error (`Err`) keeps it. A hot reload
/// starts a new pool. Well-behaved hooks are pure functions, so reuse is invisible to
/// them; the point is cost (a fresh instance of a big guest costs far more than a call
/// on a warm one: BENCHMARKS.md).
///
/// [`RuntimeLimits::instance_reuse`]: super::RuntimeLimits::instance_reuse
/// [`RuntimeLimits::pool_size`]: super::RuntimeLimits::pool_size
pub struct PluginInstance<'p> {
    plugin: &'p Plugin,
    /// The instance checked out for the current hook call, and its concurrency slot.
    live: Option<(Live, super::budget::Slot)>,
    /// False once a call failed in a way that may have left the guest's state broken.
    reusable: bool,
}

impl<'p> PluginInstance<'p> {
    pub(crate) fn new(plugin: &'p Plugin) -> Result<Self> {
        Ok(PluginInstance {
            plugin,
            live: None,
            reusable: true,
        })
    }

    /// Check an instance out for a hook call: an idle one, else a fresh one; at most
    /// the plugin's `max_concurrent` at once (waiting up to its deadline for one).
    fn checkout(&mut self) -> Result<&mut Live> {
        if self.live.is_none() {
            let plugin = self.plugin;
            // Quarantine may have started since this instance was made.
            if let Some(q) = plugin.health.quarantined() {
                return Err(PluginError::Quarantined {
                    plugin: plugin.name.to_string(),
                    cause: q.cause,
                });
            }
            let budget = &plugin.budget;
            let Some(slot) = plugin.slots.acquire(budget.max_concurrent, budget.deadline) else {
                return Err(PluginError::Busy {
                    plugin: plugin.name.to_string(),
                    limit: budget.max_concurrent,
                    wait_ms: budget.deadline.as_millis() as u64,
                });
            };
            let live = match plugin.pool.take() {
                Some(live) => {
                    // Forget what an earlier call wrote.
                    live.stderr.take_recent();
                    plugin
                        .stats
                        .reuses
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    live
                }
                None => match Self::instantiate(plugin) {
                    Ok(live) => live,
                    Err(e) => {
                        plugin.slots.release(slot);
                        return Err(e);
                    }
                },
            };
            self.live = Some((live, slot));
        }
        Ok(&mut self.live.as_mut().expect("checked out above").0)
    }

    /// End a hook call: the instance goes back to the pool unless the call may have
    /// broken it or it has served its share.
    fn release(&mut self) {
        let Some((mut live, slot)) = self.live.take() else {
            return;
        };
        self.plugin.slots.release(slot);
        live.uses += 1;
        let limits = &self.plugin.engine.limits;
        if std::mem::replace(&mut self.reusable, true) && live.uses < limits.instance_reuse {
            self.plugin.pool.give_back(live, limits.pool_size);
        }
    }

    /// Run a public hook: one checkout, released however it ends.
    fn hook<R>(&mut self, f: impl FnOnce(&mut Self) -> Result<R>) -> Result<R> {
        let out = f(self);
        self.release();
        out
    }

    fn instantiate(plugin: &Plugin) -> Result<Live> {
        let started = std::time::Instant::now();
        let engine = &plugin.engine;
        let stdout = GuestOutput::new(plugin.name.clone(), Stream::Stdout, plugin.log.clone());
        let stderr = GuestOutput::new(plugin.name.clone(), Stream::Stderr, plugin.log.clone());
        let wasi = WasiCtxBuilder::new()
            .stdout(stdout)
            .stderr(stderr.clone())
            .build();
        let limits = StoreLimitsBuilder::new()
            .memory_size(plugin.budget.memory_bytes)
            .trap_on_grow_failure(true)
            .build();
        let mut store = Store::new(
            &engine.engine,
            CallState {
                wasi,
                table: ResourceTable::new(),
                limits,
                plugin: plugin.name.clone(),
                log: plugin.log.clone(),
                reads: None,
            },
        );
        store.limiter(|s| &mut s.limits);
        store.set_epoch_deadline(PluginEngine::deadline_ticks(plugin.budget.deadline));
        let bindings =
            plugin
                .pre
                .instantiate(&mut store)
                .map_err(|e| PluginError::Instantiate {
                    plugin: plugin.name.to_string(),
                    message: format!("{e:#}"),
                })?;
        super::state::PluginStats::record(
            &plugin.stats.instances,
            &plugin.stats.instantiate_nanos,
            started,
        );
        Ok(Live {
            store,
            bindings,
            stderr,
            uses: 0,
        })
    }

    /// Run one hook under the deadline and turn wasmtime's errors into [`PluginError`].
    fn call<R>(
        &mut self,
        hook: &'static str,
        f: impl FnOnce(&Exports, &mut Store<CallState>) -> wasmtime::Result<R>,
    ) -> Result<R> {
        let plugin = self.plugin;
        let live = self.checkout()?;
        live.store
            .set_epoch_deadline(PluginEngine::deadline_ticks(plugin.budget.deadline));
        let started = std::time::Instant::now();
        let out = f(&live.bindings, &mut live.store);
        let out = out.map_err(|e| {
            self.reusable = false;
            self.classify(hook, e)
        });
        plugin
            .health
            .record(hook, started.elapsed(), out.as_ref().map(|_| ()));
        out
    }

    /// Run a hook that may read, with `source` answering its reads; what it read is
    /// added to the plugin's counters.
    fn call_reading<R>(
        &mut self,
        hook: &'static str,
        source: &Arc<dyn ReadSource>,
        f: impl FnOnce(&Exports, &mut Store<CallState>) -> wasmtime::Result<R>,
    ) -> Result<R> {
        let limits = &self.plugin.engine.limits;
        let scope = ReadScope {
            source: source.clone(),
            declared: self.plugin.resource.reads.clone(),
            budget_calls: limits.read_calls,
            budget_objects: limits.read_objects,
            budget_bytes: limits.read_bytes,
            spent: ReadsSpent::default(),
        };
        self.checkout()?.store.data_mut().reads = Some(scope);
        let out = self.call(hook, f);
        let spent = self
            .live
            .as_mut()
            .and_then(|(l, _)| l.store.data_mut().reads.take())
            .map(|s| s.spent)
            .unwrap_or_default();
        use std::sync::atomic::Ordering::Relaxed;
        let stats = &self.plugin.stats;
        stats.reads.fetch_add(spent.calls, Relaxed);
        stats.read_objects.fetch_add(spent.objects, Relaxed);
        stats.read_bytes.fetch_add(spent.bytes, Relaxed);
        out
    }

    fn classify(&self, hook: &'static str, e: wasmtime::Error) -> PluginError {
        let plugin = self.plugin.name.to_string();
        let budget = &self.plugin.budget;
        if let Some(b) = e.downcast_ref::<ReadBudgetExceeded>() {
            return PluginError::ReadBudget {
                plugin,
                hook,
                cause: ReadBudgetExceeded {
                    what: b.what,
                    limit: b.limit,
                },
            };
        }
        if e.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
            return PluginError::Deadline {
                plugin,
                hook,
                deadline_ms: budget.deadline.as_millis() as u64,
            };
        }
        if e.chain().any(|c| {
            c.to_string()
                .starts_with("forcing trap when growing memory")
        }) {
            return PluginError::OutOfMemory {
                plugin,
                hook,
                limit_mib: budget.memory_bytes >> 20,
            };
        }
        let said = self
            .live
            .as_ref()
            .map(|(l, _)| l.stderr.take_recent())
            .unwrap_or_default();
        let said = said.trim();
        let cause = e
            .downcast_ref::<Trap>()
            .map(|t| t.to_string())
            .unwrap_or_else(|| format!("{e:#}"));
        let message = if said.is_empty() {
            cause
        } else {
            format!("{cause}; the plugin wrote: {said}")
        };
        PluginError::Trap {
            plugin,
            hook,
            message,
        }
    }

    fn hook_error(&self, hook: &'static str, message: String) -> PluginError {
        self.plugin.health.record_error(hook);
        PluginError::Hook {
            plugin: self.plugin.name.to_string(),
            hook,
            message,
        }
    }

    fn malformed(&mut self, hook: &'static str, message: String) -> PluginError {
        self.reusable = false;
        self.plugin.health.record_error(hook);
        PluginError::Malformed {
            plugin: self.plugin.name.to_string(),
            hook,
            message,
        }
    }

    fn parse(&mut self, hook: &'static str, text: &str) -> Result<Value> {
        match serde_json::from_str::<Value>(text) {
            Ok(v) if v.is_object() => Ok(v),
            Ok(_) => Err(self.malformed(hook, "the object is not a JSON object".into())),
            Err(e) => Err(self.malformed(hook, format!("the object is not valid JSON: {e}"))),
        }
    }

    pub(crate) fn describe(&mut self) -> Result<wit::Resource> {
        self.hook(|me| me.call("describe", |g, s| g.describe(s)))
    }

    /// `default`: set defaults on an object of any served version.
    pub fn default(&mut self, obj: Value) -> Result<Value> {
        self.hook(|me| {
            let text = json_text(&obj);
            let out = me.call("default", |g, s| g.default(s, &text))?;
            let out = out.map_err(|m| me.hook_error("default", m))?;
            me.parse_changed("default", obj, &text, out)
        })
    }

    /// `convert`: a batch of objects to `to_version`; same length and order.
    pub fn convert(&mut self, objs: &[Value], to_version: &str) -> Result<Vec<Value>> {
        self.hook(|me| {
            let texts: Vec<String> = objs.iter().map(json_text).collect();
            let out = me.call("convert", |g, s| g.convert(s, &texts, to_version))?;
            let out = out.map_err(|m| me.hook_error("convert", m))?;
            if out.len() != objs.len() {
                return Err(me.malformed(
                    "convert",
                    format!("{} objects in, {} out", objs.len(), out.len()),
                ));
            }
            out.iter().map(|t| me.parse("convert", t)).collect()
        })
    }

    pub fn prepare_for_create(&mut self, req: &RequestInfo, obj: Value) -> Result<Value> {
        self.hook(|me| {
            let text = json_text(&obj);
            let out = me.call("prepare-for-create", |g, s| {
                g.prepare_for_create(s, req, &text)
            })?;
            let out = out.map_err(|m| me.hook_error("prepare-for-create", m))?;
            me.parse_changed("prepare-for-create", obj, &text, out)
        })
    }

    pub fn prepare_for_update(
        &mut self,
        req: &RequestInfo,
        new: Value,
        old: &Value,
    ) -> Result<Value> {
        self.hook(|me| {
            let (text, old) = (json_text(&new), json_text(old));
            let out = me.call("prepare-for-update", |g, s| {
                g.prepare_for_update(s, req, &text, &old)
            })?;
            let out = out.map_err(|m| me.hook_error("prepare-for-update", m))?;
            me.parse_changed("prepare-for-update", new, &text, out)
        })
    }

    /// A hook's output: the input as it was when the plugin returned the same text
    /// (the SDK returns an untouched object's text as is), else parsed.
    fn parse_changed(
        &mut self,
        hook: &'static str,
        input: Value,
        sent: &str,
        out: String,
    ) -> Result<Value> {
        if out == sent {
            Ok(input)
        } else {
            self.parse(hook, &out)
        }
    }

    pub fn validate_create(&mut self, req: &RequestInfo, obj: &Value) -> Result<Validation> {
        self.hook(|me| {
            let text = json_text(obj);
            me.call("validate-create", |g, s| g.validate_create(s, req, &text))
        })
    }

    pub fn validate_update(
        &mut self,
        req: &RequestInfo,
        new: &Value,
        old: &Value,
    ) -> Result<Validation> {
        self.hook(|me| {
            let (new, old) = (json_text(new), json_text(old));
            me.call("validate-update", |g, s| {
                g.validate_update(s, req, &new, &old)
            })
        })
    }

    pub fn validate_delete(&mut self, req: &RequestInfo, obj: &Value) -> Result<Validation> {
        self.hook(|me| {
            let text = json_text(obj);
            me.call("validate-delete", |g, s| g.validate_delete(s, req, &text))
        })
    }

    /// `admit`: allow (with warnings) or deny a write; reads answered by `source`.
    pub fn admit(
        &mut self,
        req: &AdmissionRequest,
        source: &Arc<dyn ReadSource>,
    ) -> Result<Admission> {
        self.hook(|me| me.call_reading("admit", source, |g, s| g.admit(s, req)))
    }

    /// `serve-subresource`: the object to answer with (JSON), or a denial.
    pub fn serve_subresource(
        &mut self,
        req: &SubresourceRequest,
        source: &Arc<dyn ReadSource>,
    ) -> Result<std::result::Result<Value, Denial>> {
        self.hook(|me| {
            match me.call_reading("serve-subresource", source, |g, s| {
                g.serve_subresource(s, req)
            })? {
                Ok(text) => me.parse("serve-subresource", &text).map(Ok),
                Err(d) => Ok(Err(d)),
            }
        })
    }

    /// `compute`: the objects of a computed kind, or a denial.
    pub fn compute(
        &mut self,
        req: &ComputeRequest,
        source: &Arc<dyn ReadSource>,
    ) -> Result<std::result::Result<Vec<Value>, Denial>> {
        self.hook(
            |me| match me.call_reading("compute", source, |g, s| g.compute(s, req))? {
                Ok(texts) => texts
                    .iter()
                    .map(|t| me.parse("compute", t))
                    .collect::<Result<Vec<_>>>()
                    .map(Ok),
                Err(d) => Ok(Err(d)),
            },
        )
    }

    /// `print`: one row per object (all in one version).
    pub fn print(&mut self, objs: &[Value]) -> Result<Vec<Vec<crate::api::Cell>>> {
        self.hook(|me| {
            let texts: Vec<String> = objs.iter().map(json_text).collect();
            let out = me.call("print", |g, s| g.print(s, &texts))?;
            let rows = out.map_err(|m| me.hook_error("print", m))?;
            if rows.len() != objs.len() {
                return Err(me.malformed(
                    "print",
                    format!("{} objects in, {} rows out", objs.len(), rows.len()),
                ));
            }
            Ok(rows
                .into_iter()
                .map(|r| r.into_iter().map(cell).collect())
                .collect())
        })
    }
}

/// A printed cell in the host's terms.
fn cell(c: wit::Cell) -> crate::api::Cell {
    use crate::api::Cell;
    match c {
        wit::Cell::Text(s) => Cell::Text(s),
        wit::Cell::Integer(i) => Cell::Integer(i),
        wit::Cell::Number(n) => Cell::Number(n),
        wit::Cell::Boolean(b) => Cell::Boolean(b),
        wit::Cell::None => Cell::None,
    }
}

impl Drop for PluginInstance<'_> {
    fn drop(&mut self) {
        self.release();
    }
}
