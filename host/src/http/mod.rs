//! HTTP: routes, content negotiation, discovery and OpenAPI, and the REST verbs on
//! plugin resources. Handlers know nothing of any kind: they parse the URL into a
//! [`Target`](crate::registry::Target), call the [`Registry`](crate::registry::Registry),
//! and render. Every error is an [`ApiError`](crate::api::ApiError), rendered as a
//! `metav1.Status` in one place (its `IntoResponse`).
//!
//! # Where things are
//!
//! - `routes.rs`: [`router`], every path the server answers, behind the middleware that
//!   authenticates and authorizes each request.
//! - `state.rs`: [`AppState`], what every handler shares.
//! - `resources.rs`: `/api` and `/apis/...`: group and version discovery, then a
//!   resource's URL parsed into a `Target` and dispatched to its verb.
//! - `subresources.rs`: `/scale` and the plugins' custom subresources.
//! - `watch.rs`: the watch verb: its options validated, then events from the watch cache.
//! - `params.rs`: query and body parameters, decoded into the registry's options.
//! - `response.rs`: rendering: JSON or YAML bodies, ETags, `Warning` headers.
//! - `errors.rs`: the errors of the layers below (the watch cache's) as `ApiError`s.
//! - [`negotiate`]: content negotiation (`Accept` and `Content-Type`).
//! - [`discovery`]: the discovery and OpenAPI documents, built once per plugin catalog;
//!   `openapi.rs` serves the OpenAPI ones.
//! - `health.rs`: `/version`, `/livez`, `/readyz`, `/healthz`.
//! - `metrics.rs`: `/metrics`.

pub mod discovery;
pub mod negotiate;

mod errors;
mod health;
mod metrics;
mod openapi;
mod openapi_schema;
mod params;
mod resources;
mod response;
mod routes;
mod state;
mod subresources;
mod watch;

pub use params::MAX_BODY_BYTES;
pub use routes::router;
pub use state::AppState;
