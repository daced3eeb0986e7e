//! The CQRS lab's services: the event sourcing lab's order aggregate and store on the write
//! side; a publisher reading `$all`; projections over an in-process bus or NATS JetStream
//! into two read models, each in its own SQLite file; the read API with read-your-writes,
//! `/metrics` with lag, and rebuilds.
//!
//! - [`write`] — commands in, events appended, a position token out;
//! - [`publisher`] — `$all` to the transport, with its own checkpoint;
//! - [`transport`] — the in-process bus and JetStream;
//! - [`projection`] — a projection committing rows and checkpoint together, then acking;
//!   rebuilds;
//! - [`viewdb`] — a view's SQLite file;
//! - [`read`] — the read, metrics and admin APIs;
//! - [`system`] — the pieces put together, in one process or one role per process;
//! - [`telemetry`] — the services' tracing, on when an OTLP endpoint is given;
//! - [`demo`] — the narrated demo.

pub mod demo;
pub mod projection;
pub mod publisher;
pub mod read;
pub mod system;
pub mod telemetry;
pub mod transport;
pub mod viewdb;
pub mod write;
