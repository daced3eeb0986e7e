//! The guide's JavaScript samples, retold in Rust and kept compiling.
//!
//! The book never pastes code: each chapter includes a named region of one of these modules with
//! `{{#include ../../samples/src/<topic>.rs:<anchor>}}`, so every snippet a reader sees has been
//! built and tested. A module covers one topic of the guide and keeps the logic pure where it can
//! (time is a parameter, I/O sits behind a small trait) so that the tests are deterministic. When a
//! pattern's lab lands, its chapter switches to including the lab's code instead.
//!
//! | Module | Chapter |
//! |---|---|
//! | [`communication`] | Service Communication (request-response and publish-subscribe) |
//! | [`composition`] | API Composition |
//! | [`event_sourcing`] | Event Sourcing (append with expected version, replay, snapshots) |

pub mod communication;
pub mod composition;
pub mod event_sourcing;
