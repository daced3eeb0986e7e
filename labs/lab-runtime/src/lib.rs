//! The service side every lab shares, so a lab's `src/` holds only what its pattern adds.
//!
//! - [`clock`] — where a service's "now" comes from: tokio's clock as [`Millis`] (virtual
//!   under a paused test runtime), and a manual clock for threaded tests;
//! - [`driver`] — one loop that feeds any [`Machine`] its inputs from a channel and sleeps
//!   until its `poll_timeout`;
//! - [`serve`] — an axum router on a listener, with graceful shutdown passed in, and
//!   [`Running`], a spawned server that can be stopped;
//! - [`cli`] — the `--role` / `--port` shape of every lab's command line;
//! - [`logging`] — `tracing` to standard error, so standard output stays the narration's;
//! - [`palette`] — colours only on a terminal and never with `NO_COLOR`, the same for the
//!   demos and the grader;
//! - [`narration`] — the lines a narrated demo prints: steps, requests and responses, and
//!   timeline rows stamped with the scenario's time.
//!
//! Without the default `service` feature only [`palette`] and [`narration`] remain, with no
//! tokio in the build (the grader uses them so).

pub mod narration;
pub mod palette;

#[cfg(feature = "service")]
pub mod cli;
#[cfg(feature = "service")]
pub mod clock;
#[cfg(feature = "service")]
pub mod driver;
#[cfg(feature = "service")]
pub mod logging;
#[cfg(feature = "service")]
pub mod serve;

pub use narration::Narrator;
pub use palette::Palette;
pub use sansio_core::{Machine, Millis};

#[cfg(feature = "service")]
pub use clock::{Clock, ManualClock, TokioClock};
#[cfg(feature = "service")]
pub use serve::{Running, spawn};
