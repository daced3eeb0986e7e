//! Time as a plain number: the breaker never reads a clock, the driver passes `now` in.
//!
//! [`Millis`] comes from `sansio-core`, the time vocabulary every lab core shares, so the
//! breaker, the saga and the gateway speak of time with one type. It is re-exported here so
//! the breaker's public path stays `breaker_core::Millis`.

pub use sansio_core::Millis;
