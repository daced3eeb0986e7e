//! The circuit breaker core: a pure, deterministic state machine with time passed in.
//!
//! This crate is what the lab's tower layer (`lab-breaker`), the WASM playground and the
//! graded tests share. It does no I/O, starts no threads and reads no clock, so it builds
//! for `wasm32-unknown-unknown`. Its jitter comes from a seeded generator: with a fixed
//! `Config::seed` it behaves identically everywhere; without one, each breaker draws its
//! seed once, when it is built ([`Config::jitter_seed`]), so instances do not wait alike.
//!
//! The vocabulary is the same in every core of the book (sans-IO, as in quinn-proto), and
//! the breaker implements it as [`Machine`], the trait every core shares: inputs go in
//! through [`CircuitBreaker::handle_input`] and [`CircuitBreaker::handle_timeout`], effects
//! come out of [`CircuitBreaker::poll_output`], and [`CircuitBreaker::poll_timeout`] says
//! when the breaker next needs the clock. The ergonomic methods (`try_acquire`,
//! `on_outcome`, `release`, ...) do the same with less ceremony and queue the same events.
//!
//! ```
//! use breaker_core::{CircuitBreaker, Config, Millis, Outcome, State, WindowKind};
//!
//! let mut breaker = CircuitBreaker::new(Config {
//!     window: WindowKind::CountBased { size: 4 },
//!     minimum_calls: 4,
//!     wait_in_open: Millis::from_secs(5),
//!     ..Config::default()
//! })?;
//! for t in 0..4 {
//!     let permit = breaker.try_acquire(Millis(t)).expect("closed admits calls");
//!     breaker.on_outcome(Millis(t), permit, Outcome::Failure, Millis(20))?;
//! }
//! assert_eq!(breaker.state(), State::Open);
//! let rejected = breaker.try_acquire(Millis(1_000)).unwrap_err();
//! assert_eq!(rejected.retry_after, Some(Millis(4_003)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The graded part of the lab is the [`circuit`](crate::CircuitBreaker) module; with the
//! `exercise` feature the learner's copy in `labs/breaker/exercise/circuit.rs` replaces it.

mod config;
mod error;
mod event;
mod machine;
mod metrics;
mod outcome;
mod state;

// The modules, the graded one and its learner's copy among them, name time
// `crate::time::Millis`. Time lives in `sansio-core`, so that path leads there.
use sansio_core as time;

// The graded module: the reference solution, or the learner's copy with `--features exercise`.
#[cfg_attr(feature = "exercise", path = "../../exercise/circuit.rs")]
mod circuit;

pub use circuit::{CircuitBreaker, SlidingWindow};
pub use config::{
    Backoff, Config, ConfigError, MAX_PERMITTED_CALLS_IN_HALF_OPEN, MAX_WINDOW_SIZE, WindowKind,
};
pub use error::{BreakerError, Rejected};
pub use event::{Event, Input, Output, TransitionReason};
pub use metrics::{CallRecord, Metrics, WindowSnapshot};
pub use outcome::{
    Classify, HttpStatusClassifier, Outcome, ResultClassifier, classify_http_status,
};
pub use sansio_core::{Machine, Millis};
pub use state::{Permit, State};
