//! Per-plugin budgets: what one plugin's hooks may use, from the server's flags and,
//! for each plugin, an optional settings file beside it (`hello.wasm` →
//! `hello.settings.yaml`):
//!
//! ```yaml
//! memoryLimitMiB: 32          # linear memory one instance may grow to
//! hookDeadline: 250ms         # wall-clock time one hook call may run
//! maxConcurrentInstances: 4   # hook calls running at once; more wait, then 429
//! logLinesPerSecond: 50       # lines to the server log; the rest are counted, dropped
//! quarantineThreshold: 5      # hook failures within the window that quarantine it
//! upgradeGate: Enforce        # or Skip: replace a build without replaying objects
//! ```
//!
//! Unknown fields are refused, naming the file and the field.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use super::health::QuarantinePolicy;

/// Whether a new build must pass the upgrade gate before it replaces a serving one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, clap::ValueEnum)]
pub enum GateMode {
    /// Replay stored objects through the new build; any failure refuses the swap.
    #[default]
    Enforce,
    /// Swap without the replay: a deliberate break.
    Skip,
}

/// A plugin's settings file, as written.
#[derive(Clone, Debug, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PluginSettings {
    #[serde(rename = "memoryLimitMiB")]
    pub memory_limit_mib: Option<usize>,
    pub hook_deadline: Option<String>,
    pub max_concurrent_instances: Option<usize>,
    pub log_lines_per_second: Option<u32>,
    pub quarantine_threshold: Option<u32>,
    pub upgrade_gate: Option<GateMode>,
}

impl PluginSettings {
    /// The settings file of the plugin at `wasm`.
    pub fn path_for(wasm: &Path) -> PathBuf {
        let stem = wasm.file_stem().unwrap_or_default().to_string_lossy();
        wasm.with_file_name(format!("{stem}.settings.yaml"))
    }

    /// The plugin at `wasm`'s settings, or none when it has no settings file.
    pub fn read(wasm: &Path) -> anyhow::Result<Option<(PluginSettings, String)>> {
        let path = Self::path_for(wasm);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => anyhow::bail!("cannot read {}: {e}", path.display()),
        };
        let settings: PluginSettings = if text.trim().is_empty() {
            PluginSettings::default()
        } else {
            serde_yaml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        };
        Ok(Some((settings, text)))
    }
}

/// What one plugin's hooks may use: the server's defaults with its settings applied.
#[derive(Clone, Debug, PartialEq)]
pub struct Budget {
    pub memory_bytes: usize,
    pub deadline: Duration,
    /// Hook calls of this plugin running at once (instances checked out).
    pub max_concurrent: usize,
    /// Lines per second the plugin may write to the server log (0: no limit).
    pub log_lines_per_second: u32,
    pub quarantine: QuarantinePolicy,
    pub upgrade_gate: GateMode,
}

impl Budget {
    /// `defaults` with `settings` applied; `memory_cap` is the most any instance may
    /// have (the pooling allocator's slot).
    pub fn resolve(
        defaults: &Budget,
        settings: &PluginSettings,
        memory_cap: usize,
    ) -> anyhow::Result<Budget> {
        let mut b = defaults.clone();
        if let Some(mib) = settings.memory_limit_mib {
            anyhow::ensure!(
                mib > 0 && mib.checked_mul(1 << 20).is_some_and(|b| b <= memory_cap),
                "memoryLimitMiB: {mib} must be between 1 and the server's --plugin-memory-mib ({})",
                memory_cap >> 20
            );
            b.memory_bytes = mib << 20;
        }
        if let Some(d) = &settings.hook_deadline {
            let secs = crate::api::duration::parse_go_duration(d)
                .map_err(|e| anyhow::anyhow!("hookDeadline: {e}"))?;
            b.deadline = Duration::try_from_secs_f64(secs)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| anyhow::anyhow!("hookDeadline: {d:?} must be more than 0"))?;
        }
        if let Some(n) = settings.max_concurrent_instances {
            anyhow::ensure!(n > 0, "maxConcurrentInstances: must be 1 or more");
            b.max_concurrent = n;
        }
        if let Some(n) = settings.log_lines_per_second {
            b.log_lines_per_second = n;
        }
        if let Some(n) = settings.quarantine_threshold {
            b.quarantine.threshold = n;
        }
        if let Some(g) = settings.upgrade_gate {
            b.upgrade_gate = g;
        }
        Ok(b)
    }
}

thread_local! {
    /// The slots this thread holds (by address): a hook that reads its own kind in
    /// another version converts through its own plugin on the same thread, and must
    /// not wait for a second slot (with one slot it would wait for itself).
    static HELD: std::cell::RefCell<Vec<usize>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A slot taken by [`Slots::acquire`]: counted, or nested in one this thread holds.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    Counted,
    Nested,
}

/// A cap on the hook calls of one plugin running at once.
#[derive(Debug, Default)]
pub struct Slots {
    busy: Mutex<usize>,
    freed: Condvar,
    /// Calls turned away after waiting.
    pub refused: AtomicU64,
}

impl Slots {
    fn id(&self) -> usize {
        self as *const Slots as usize
    }

    /// Take a slot, waiting up to `wait` for one; `None` when none freed in time. A
    /// thread that holds one already gets a nested one at once.
    pub(crate) fn acquire(&self, max: usize, wait: Duration) -> Option<Slot> {
        if HELD.with(|h| h.borrow().contains(&self.id())) {
            return Some(Slot::Nested);
        }
        let deadline = Instant::now() + wait;
        let mut busy = crate::sync::lock(&self.busy);
        while *busy >= max {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.refused.fetch_add(1, Relaxed);
                return None;
            }
            busy = match self.freed.wait_timeout(busy, left) {
                Ok((b, _)) => b,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        *busy += 1;
        HELD.with(|h| h.borrow_mut().push(self.id()));
        Some(Slot::Counted)
    }

    pub(crate) fn release(&self, slot: Slot) {
        if slot == Slot::Nested {
            return;
        }
        HELD.with(|h| {
            let mut h = h.borrow_mut();
            if let Some(i) = h.iter().rposition(|s| *s == self.id()) {
                h.swap_remove(i);
            }
        });
        let mut busy = crate::sync::lock(&self.busy);
        *busy = busy.saturating_sub(1);
        self.freed.notify_one();
    }

    /// Hook calls running now.
    pub fn busy(&self) -> usize {
        *crate::sync::lock(&self.busy)
    }
}

/// A token bucket on one plugin's log lines (host `log` calls and stdout/stderr):
/// a burst of one second's worth, refilled continuously.
#[derive(Debug)]
pub struct LogLimiter {
    per_second: u32,
    state: Mutex<(f64, Instant)>,
    pub dropped: AtomicU64,
}

impl LogLimiter {
    pub fn new(per_second: u32) -> Self {
        LogLimiter {
            per_second,
            state: Mutex::new((per_second as f64, Instant::now())),
            dropped: AtomicU64::new(0),
        }
    }

    /// Whether one more line may be logged now.
    pub fn allow(&self) -> bool {
        if self.per_second == 0 {
            return true;
        }
        let mut s = crate::sync::lock(&self.state);
        let now = Instant::now();
        let rate = self.per_second as f64;
        s.0 = (s.0 + now.duration_since(s.1).as_secs_f64() * rate).min(rate);
        s.1 = now;
        if s.0 >= 1.0 {
            s.0 -= 1.0;
            true
        } else {
            self.dropped.fetch_add(1, Relaxed);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> Budget {
        Budget {
            memory_bytes: 64 << 20,
            deadline: Duration::from_secs(1),
            max_concurrent: 32,
            log_lines_per_second: 100,
            quarantine: QuarantinePolicy::default(),
            upgrade_gate: GateMode::Enforce,
        }
    }

    #[test]
    fn settings_override_the_flags_within_the_servers_caps() {
        let s: PluginSettings = serde_yaml::from_str(
            "memoryLimitMiB: 16\nhookDeadline: 250ms\nmaxConcurrentInstances: 2\nlogLinesPerSecond: 5\nquarantineThreshold: 0\nupgradeGate: Skip\n",
        )
        .unwrap();
        let b = Budget::resolve(&defaults(), &s, 64 << 20).unwrap();
        assert_eq!(b.memory_bytes, 16 << 20);
        assert_eq!(b.deadline, Duration::from_millis(250));
        assert_eq!(b.max_concurrent, 2);
        assert_eq!(b.log_lines_per_second, 5);
        assert_eq!(b.quarantine.threshold, 0);
        assert_eq!(b.upgrade_gate, GateMode::Skip);
        let too_big: PluginSettings = serde_yaml::from_str("memoryLimitMiB: 128").unwrap();
        let e = Budget::resolve(&defaults(), &too_big, 64 << 20).unwrap_err();
        assert_eq!(
            e.to_string(),
            "memoryLimitMiB: 128 must be between 1 and the server's --plugin-memory-mib (64)"
        );
        let bad: PluginSettings = serde_yaml::from_str("hookDeadline: soon").unwrap();
        assert!(Budget::resolve(&defaults(), &bad, 64 << 20)
            .unwrap_err()
            .to_string()
            .starts_with("hookDeadline: "));
        let e = serde_yaml::from_str::<PluginSettings>("memoryLimit: 1").unwrap_err();
        assert!(e.to_string().contains("unknown field `memoryLimit`"), "{e}");
    }

    #[test]
    fn slots_cap_concurrent_calls_and_time_out() {
        let s = std::sync::Arc::new(Slots::default());
        let held = s.acquire(1, Duration::ZERO).unwrap();
        assert_eq!(held, Slot::Counted);
        // Another thread finds the one slot busy and gives up after its wait.
        let other = s.clone();
        let refused = std::thread::spawn(move || other.acquire(1, Duration::from_millis(10)))
            .join()
            .unwrap();
        assert_eq!(refused, None);
        assert_eq!(s.refused.load(Relaxed), 1);
        // This thread holds it: a nested call (a read converting through the same
        // plugin) goes ahead without a second slot.
        assert_eq!(s.acquire(1, Duration::ZERO), Some(Slot::Nested));
        s.release(Slot::Nested);
        assert_eq!(s.busy(), 1);
        s.release(held);
        assert_eq!(s.busy(), 0);
        assert_eq!(s.acquire(1, Duration::ZERO), Some(Slot::Counted));
    }

    #[test]
    fn the_log_limiter_allows_a_burst_then_drops() {
        let l = LogLimiter::new(3);
        let allowed = (0..10).filter(|_| l.allow()).count();
        assert_eq!(allowed, 3);
        assert_eq!(l.dropped.load(Relaxed), 7);
        assert!(LogLimiter::new(0).allow());
    }
}
