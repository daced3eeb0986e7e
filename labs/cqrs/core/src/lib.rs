//! The CQRS core: the read side of the event sourcing lab's store, as pure functions and
//! state machines.
//!
//! Nothing here does I/O, reads a clock or spawns a task. The lab (`lab-cqrs`) feeds it from
//! the store's `$all` over a bus or NATS JetStream and keeps the views in SQLite; the graded
//! exercise replaces [`project`] and [`HighWater`] with the learner's copies
//! (`--features exercise`).
//!
//! - [`fact`] — `$all`'s events as the read side decodes them: orders, customers, products;
//! - [`View`] — a read model as plain data, and the two the lab serves: [`Details`] (the order
//!   page, denormalised) and [`Summary`] (per customer);
//! - [`project`] and [`HighWater`] — the projection step and the high-water mark (graded);
//! - [`Projector`] — a projection as a `Machine`: in any order in, each event applied once;
//! - [`consistency`] — read-your-writes: a query waits for its token, up to a bound;
//! - [`rebuild`] — a rebuild as states, while the old generation serves.

pub mod consistency;
pub mod details;
pub mod fact;
pub mod projector;
pub mod rebuild;
pub mod summary;
pub mod view;

// The graded module: the reference, or the learner's copy with `--features exercise`.
#[cfg_attr(feature = "exercise", path = "../../exercise/step.rs")]
mod step;

pub use consistency::{Freshness, Waits, freshness};
pub use details::{DetailLine, Details, OrderDetails};
pub use fact::{Catalog, Fact, FactError, Positioned};
pub use projector::{Projector, replay};
pub use sansio_core::{Machine, Millis};
pub use step::{HighWater, Offered, Released, Step, project};
pub use summary::{CustomerSummary, OrderOwner, Summary};
pub use view::{RowKey, View};
