//! Time as a plain number: the rate limiter never reads a clock, the driver passes `now` in.
//!
//! [`Millis`] comes from `sansio-core`, the time vocabulary every lab core shares. Keeping time
//! out of the limiter is what lets a test "wait" an hour in a microsecond and get the same
//! answer every run. It is re-exported here so the gateway's public path stays
//! `gateway_core::Millis`.

pub use sansio_core::Millis;
