//! Time as a plain number: the saga never reads a clock, the driver passes `now` in.
//!
//! [`Millis`] comes from `sansio-core`, the time vocabulary every lab core shares: the same
//! type, with the same name and meaning, as in the circuit breaker core, so a reader learns it
//! once. It is re-exported here so the saga's public path stays `saga_core::Millis`.

pub use sansio_core::Millis;
