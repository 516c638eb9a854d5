//! A plugin build's health: what each hook cost and how it failed (for `/metrics`),
//! and quarantine — a build whose hooks trap, miss their deadline or run out of
//! memory too often stops being called. Its kind keeps serving what needs no hook
//! (reads in the storage version, metadata-only reads, deletes), so that namespace
//! deletion and garbage collection never stall on it; everything else answers 503
//! until a new build is loaded (a new build starts healthy).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use super::PluginError;

/// The hooks of the contract, in the order `/metrics` lists them.
pub const HOOKS: [&str; 12] = [
    "describe",
    "default",
    "convert",
    "prepare-for-create",
    "prepare-for-update",
    "validate-create",
    "validate-update",
    "validate-delete",
    "admit",
    "serve-subresource",
    "compute",
    "print",
];

/// Upper bounds (seconds) of the hook latency histogram's buckets: 10 µs to 5 s.
pub const LATENCY_BUCKETS: [f64; 16] = [
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 1.0, 5.0,
];

/// One hook's counters.
#[derive(Default, Debug)]
pub struct HookStats {
    pub calls: AtomicU64,
    /// Deliberate errors (`Err` from the guest) and malformed results.
    pub errors: AtomicU64,
    pub traps: AtomicU64,
    pub timeouts: AtomicU64,
    pub out_of_memory: AtomicU64,
    /// Cumulative counts per [`LATENCY_BUCKETS`] bound (the last slot is +Inf).
    pub buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    pub nanos: AtomicU64,
}

impl HookStats {
    fn observe(&self, took: Duration) {
        self.calls.fetch_add(1, Relaxed);
        self.nanos.fetch_add(took.as_nanos() as u64, Relaxed);
        let secs = took.as_secs_f64();
        let first = LATENCY_BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(LATENCY_BUCKETS.len());
        // Non-cumulative here; `/metrics` sums them up.
        self.buckets[first].fetch_add(1, Relaxed);
    }
}

/// When a build is quarantined: `threshold` failures (traps, missed deadlines,
/// out-of-memory) within `window`. A threshold of 0 never quarantines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuarantinePolicy {
    pub threshold: u32,
    pub window: Duration,
}

impl Default for QuarantinePolicy {
    fn default() -> Self {
        QuarantinePolicy {
            threshold: 5,
            window: Duration::from_secs(60),
        }
    }
}

/// Why and since when a build is quarantined.
#[derive(Clone, Debug)]
pub struct Quarantine {
    pub since: SystemTime,
    pub cause: String,
}

/// A plugin build's counters and quarantine state.
#[derive(Debug)]
pub struct Health {
    policy: QuarantinePolicy,
    pub hooks: [HookStats; HOOKS.len()],
    /// When the recent failures happened (at most `threshold` kept).
    failures: Mutex<VecDeque<Instant>>,
    quarantine: Mutex<Option<Quarantine>>,
    /// Set once, read on every hook call without a lock.
    quarantined: std::sync::atomic::AtomicBool,
}

impl Health {
    pub fn new(policy: QuarantinePolicy) -> Self {
        Health {
            policy,
            hooks: Default::default(),
            failures: Mutex::default(),
            quarantine: Mutex::default(),
            quarantined: Default::default(),
        }
    }

    /// Hook calls of every hook so far.
    pub fn calls(&self) -> u64 {
        self.hooks.iter().map(|h| h.calls.load(Relaxed)).sum()
    }

    /// Nanoseconds spent in every hook so far.
    pub fn nanos(&self) -> u64 {
        self.hooks.iter().map(|h| h.nanos.load(Relaxed)).sum()
    }

    pub fn policy(&self) -> QuarantinePolicy {
        self.policy
    }

    fn stats(&self, hook: &str) -> &HookStats {
        let i = HOOKS.iter().position(|h| *h == hook).unwrap_or(0);
        &self.hooks[i]
    }

    /// Count a hook call that ended in `outcome` after `took`; a failure that counts
    /// towards quarantine may start it.
    pub(crate) fn record(&self, hook: &str, took: Duration, outcome: Result<(), &PluginError>) {
        let s = self.stats(hook);
        s.observe(took);
        let Err(e) = outcome else { return };
        let counter = match e {
            PluginError::Trap { .. } => &s.traps,
            PluginError::Deadline { .. } => &s.timeouts,
            PluginError::OutOfMemory { .. } => &s.out_of_memory,
            // Deliberate errors are counted where they are recognized
            // (`record_error`); others (read budgets, instantiation) are not the hook's.
            _ => return,
        };
        counter.fetch_add(1, Relaxed);
        self.failed(e);
    }

    /// A deliberate error (the guest's `Err`) or a malformed result of `hook`.
    pub(crate) fn record_error(&self, hook: &str) {
        self.stats(hook).errors.fetch_add(1, Relaxed);
    }

    /// A failure that counts towards quarantine.
    fn failed(&self, e: &PluginError) {
        let threshold = self.policy.threshold as usize;
        if threshold == 0 || self.is_quarantined() {
            return;
        }
        let now = Instant::now();
        let mut recent = crate::sync::lock(&self.failures);
        recent.push_back(now);
        while recent
            .front()
            .is_some_and(|t| now.duration_since(*t) > self.policy.window)
            || recent.len() > threshold
        {
            recent.pop_front();
        }
        if recent.len() >= threshold {
            let cause = format!(
                "{threshold} hook failures within {}s, the last: {e}",
                self.policy.window.as_secs()
            );
            self.quarantine(cause);
        }
    }

    /// Stop calling this build's hooks (until another build replaces it).
    pub fn quarantine(&self, cause: String) {
        let mut q = crate::sync::lock(&self.quarantine);
        if q.is_none() {
            tracing::error!(
                %cause,
                "plugin quarantined: its hooks are no longer called; its kind serves reads in \
                 the storage version and deletes until a new build is loaded"
            );
            *q = Some(Quarantine {
                since: SystemTime::now(),
                cause,
            });
            self.quarantined
                .store(true, std::sync::atomic::Ordering::Release);
        }
    }

    pub fn is_quarantined(&self) -> bool {
        self.quarantined.load(std::sync::atomic::Ordering::Acquire)
    }

    pub fn quarantined(&self) -> Option<Quarantine> {
        if !self.is_quarantined() {
            return None;
        }
        crate::sync::lock(&self.quarantine).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trap() -> PluginError {
        PluginError::Trap {
            plugin: "p.wasm".into(),
            hook: "default",
            message: "unreachable".into(),
        }
    }

    #[test]
    fn quarantine_starts_at_the_threshold_within_the_window() {
        let h = Health::new(QuarantinePolicy {
            threshold: 3,
            window: Duration::from_secs(60),
        });
        let took = Duration::from_micros(3);
        h.record("default", took, Ok(()));
        let hook_error = PluginError::Hook {
            plugin: "p.wasm".into(),
            hook: "default",
            message: "no".into(),
        };
        // Deliberate errors never count.
        for _ in 0..10 {
            h.record("default", took, Err(&hook_error));
            h.record_error("default");
        }
        h.record("default", took, Err(&trap()));
        h.record("default", took, Err(&trap()));
        assert!(!h.is_quarantined());
        h.record("default", took, Err(&trap()));
        let q = h.quarantined().expect("quarantined at the third trap");
        assert!(
            q.cause.starts_with(
                "3 hook failures within 60s, the last: plugin p.wasm: default trapped"
            ),
            "{}",
            q.cause
        );
        let s = &h.hooks[1];
        assert_eq!(s.calls.load(Relaxed), 14);
        assert_eq!(s.errors.load(Relaxed), 10);
        assert_eq!(s.traps.load(Relaxed), 3);
        assert_eq!(
            s.buckets[0].load(Relaxed),
            14,
            "3 µs is in the first (10 µs) bucket"
        );
    }

    #[test]
    fn old_failures_leave_the_window_and_zero_never_quarantines() {
        let h = Health::new(QuarantinePolicy {
            threshold: 2,
            window: Duration::from_millis(20),
        });
        h.record("print", Duration::ZERO, Err(&trap()));
        std::thread::sleep(Duration::from_millis(40));
        h.record("print", Duration::ZERO, Err(&trap()));
        assert!(!h.is_quarantined(), "the first failure left the window");
        let never = Health::new(QuarantinePolicy {
            threshold: 0,
            window: Duration::from_secs(60),
        });
        for _ in 0..100 {
            never.record("print", Duration::ZERO, Err(&trap()));
        }
        assert!(!never.is_quarantined());
    }
}
