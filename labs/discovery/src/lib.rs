//! The Discovery lab's services: a service registry that speaks a subset of Consul's HTTP
//! API, around `discovery-core`.
//!
//! - [`server`] — the registry service: routes, blocking queries, HTTP probes, the timer task;
//! - [`consul`] — Consul's wire format: registrations in, errors and response shapes out;
//! - [`decode`] — Consul's way of reading JSON: case-insensitive keys, Go durations;
//! - [`store`] — registrations in SQLite, restored after a restart;
//! - [`demo`] — the narrated demo's scenario on a simulated clock.

pub mod consul;
pub mod decode;
pub mod demo;
pub mod server;
pub mod store;

pub use server::{RegistryService, Settings};
