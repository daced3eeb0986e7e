//! The API gateway lab: one entry point in front of four services.
//!
//! The decisions that need no network live in the pure core, [`gateway_core`] (route
//! matching, path normalization, the GCRA rate limiter, proxy-header rules); this crate
//! puts them behind real sockets:
//!
//! - [`config`] — the TOML configuration;
//! - [`connection`] — request heads checked on the raw bytes, before hyper parses them;
//! - [`server`] — the HTTP server with its header timeout and graceful shutdown, the one
//!   decision between the gateway's own routes (`/health`, the aggregated view, the access
//!   log: an axum router) and the proxy;
//! - [`proxy`] — route → admit → forward → stream back, for every proxied request;
//! - [`state`] — what the handlers share (routes resolved to their upstreams once) and the
//!   admission every request passes: per-address limit, token, per-subject limit;
//! - [`auth`] — JWT validation (HS256/RS256, JWKS reload on unknown `kid`);
//! - [`limiter`] — the core's limiter, sharded for many tasks, and the `RateLimit-*` headers;
//! - [`forward`] — header rules applied to requests, and the streaming body guard;
//! - [`upstream`] — a breaker per upstream, the retry budget;
//! - [`pool`] — each instance's keep-alive connections;
//! - [`registry`] — upstreams found in a service registry: the blocking-query watch, a pool
//!   per passing instance, round-robin or two choices over them;
//! - [`trace`] — W3C trace context through the gateway and a span per proxied request;
//! - [`aggregate`] — `/api/order-details/{id}` with partial results;
//! - [`problem`] — problem+json errors;
//! - [`services`] — the demo's user, order, product and payment services;
//! - [`tokens`] — issuing demo tokens.

pub mod aggregate;
pub mod auth;
pub mod config;
pub mod connection;
pub mod forward;
pub mod limiter;
pub mod pool;
pub mod problem;
pub mod proxy;
pub mod registry;
pub mod server;
pub mod services;
pub mod state;
pub mod tokens;
pub mod trace;
pub mod upstream;

pub use config::Config;
pub use gateway_core;
pub use server::{router, serve};
pub use state::Gateway;
