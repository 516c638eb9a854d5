//! Watch: one cache per resource, as k8s.io/apiserver's cacher does it, written
//! against the storage trait so that every backend gets it.
//!
//! A [`Cacher`] keeps the resource's current objects (in the storage version) and a
//! bounded window of recent events, fed by one storage watch. Watchers register with
//! the cacher; each event is fanned out to them as an `Arc` — never copied. An object is
//! converted to a version and serialized once per (version, encoding), the first time a
//! watcher needs it, and every other watcher of that version reuses the bytes. The
//! dispatcher encodes each event for every encoding that has watchers before fanning
//! it out, so the plugin sees one `convert` call per event per version watched.
//! Conversions and Table cells stay with the cached object: reads (GET and LIST, Table
//! or not) of an object the cache holds at the revision storage returned reuse them, so
//! a plugin runs once per object revision and version, not once per read. Hooks are
//! pure (the WIT contract), and a plugin swap (hot reload) forgets them all.
//!
//! A watcher has a bounded queue; one that falls behind is closed (its client relists),
//! never buffered without bound. A resume from a revision older than the window gets
//! an ERROR event carrying 410 Expired, as kube-apiserver sends it.
//!
//! # Where things are
//!
//! The files follow k8s.io/apiserver's `pkg/storage/cacher/`:
//!
//! - `caches.rs`: [`WatchCaches`], every resource's cache, created on first use and
//!   kept or replaced when a plugin reloads; [`WatchSettings`], the server flags.
//! - `cacher.rs` (`cacher.go`): the [`Cacher`] of one resource: start and stop, and its
//!   dispatcher, which lists, follows the storage watch, applies each event and fans
//!   it out.
//! - `watch_cache.rs` (`watch_cache.go`): what the cacher holds — the current objects,
//!   the window of recent [`CachedEvent`]s, the registered watchers — and the lookups
//!   that wait until the cache is ready or has reached a resourceVersion.
//! - `cached_object.rs` (`caching_object.go`): a [`CachedObject`] and what is
//!   remembered with it: its conversions, Table cells and bytes per [`Encoding`].
//! - `stream.rs` (`cache_watcher.go`): one watcher, from [`WatchRequest`] to the
//!   newline-delimited events of its response.
//! - `error.rs`: [`WatchError`], which the HTTP layer maps to a `Status`.

mod cached_object;
mod cacher;
mod caches;
mod error;
mod stream;
mod watch_cache;

pub use cached_object::{CachedObject, Encoding};
pub use cacher::{Cacher, CacherStats};
pub use caches::{WatchCaches, WatchSettings};
pub use error::{Result, WatchError};
pub use stream::{WatchRequest, WatchStart};
pub use watch_cache::{CachedEvent, EventType};
