//! The vocabulary every lab core shares: time passed in, and one shape of state machine.
//!
//! A sans-IO core (the circuit breaker, the saga, the gateway's rate limiter) never asks a
//! clock what time it is: the driver passes `now` in, as a [`Millis`]. One type serves for
//! both an instant ("1500 ms after the driver's epoch") and a span ("wait 1500 ms"). The labs
//! map a tokio `Instant` onto it, the playground a simulated clock, and the tests simply count.
//!
//! Every core has the same shape, the [`Machine`] trait: inputs go in through
//! [`handle_input`](Machine::handle_input) and [`handle_timeout`](Machine::handle_timeout),
//! effects come out of [`poll_output`](Machine::poll_output), and
//! [`poll_timeout`](Machine::poll_timeout) says when the machine next needs the clock. A
//! reader learns it once; a driver written for one core reads like the driver of another; and
//! [`script::run`] drives any of them over a script of inputs and clock jumps, returning the
//! timeline a test compares.
//!
//! Keeping time out of the cores is what makes them deterministic, testable without sleeping
//! (a test "waits" an hour in a microsecond and gets the same answer every run), and buildable
//! for `wasm32-unknown-unknown`, where `std::time::Instant::now()` panics. This crate needs no
//! `std` (only `alloc`, for the script driver's timeline), and no async runtime. Every core
//! re-exports [`Millis`] and [`Machine`] under its own name (`breaker_core::Millis`,
//! `saga_core::Machine`, ...), so a reader meets them where the core is.

#![no_std]

extern crate alloc;

mod machine;
mod millis;
pub mod script;

pub use machine::Machine;
pub use millis::Millis;
