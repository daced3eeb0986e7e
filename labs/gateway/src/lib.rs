//! The API gateway lab: one entry point in front of four services.
//!
//! The decisions that need no network live in the pure core, [`gateway_core`] (route
//! matching, path normalization, the GCRA rate limiter, proxy-header rules); this crate
//! puts them behind real sockets:
//!
//! - [`config`] — the TOML configuration;
//! - [`connection`] — request heads checked on the raw bytes, before hyper parses them;
//! - [`gateway`] — route → authenticate → limit → forward, the HTTP server with its header
//!   timeout and graceful shutdown, `/health` and the access log (an axum router);
//! - [`auth`] — JWT validation (HS256/RS256, JWKS reload on unknown `kid`);
//! - [`limiter`] — the core's limiter, sharded for many tasks, and the `RateLimit-*` headers;
//! - [`forward`] — header rules applied to requests, and the streaming body guard;
//! - [`upstream`] — a breaker per upstream, the retry budget;
//! - [`pool`] — each upstream's keep-alive connections;
//! - [`aggregate`] — `/api/order-details/{id}` with partial results;
//! - [`problem`] — problem+json errors;
//! - [`services`] — the demo's user, order, product and payment services;
//! - [`tokens`] — issuing demo tokens.

pub mod aggregate;
pub mod auth;
pub mod config;
pub mod connection;
pub mod forward;
pub mod gateway;
pub mod limiter;
pub mod pool;
pub mod problem;
pub mod services;
pub mod tokens;
pub mod upstream;

pub use config::Config;
pub use gateway::{Gateway, router, serve};
pub use gateway_core;
