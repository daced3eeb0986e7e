//! The circuit-breaker playground: the real breaker core in a simulated world.
//!
//! - [`settings`]: what the page's controls set, their keys in the URL, and the core's
//!   configuration they describe;
//! - [`action`]: what the reader did, and its token in the URL's `do` list;
//! - [`sim`]: the simulation itself: the clock, the downstream, the core, and the scenario's
//!   query string;
//! - [`view`]: the frames the page draws, serialised to JSON;
//! - `wording`: the log's sentences for the core's events.

pub mod action;
pub mod settings;
pub mod sim;
pub mod view;
mod wording;

pub use action::Action;
pub use settings::{BreakerSettings, Downstream};
pub use sim::{BreakerSim, MAX_ADVANCE_MS};
pub use view::{CallMark, Frame, LogLine, MarkKind, RatePoint, Totals, Transition};
