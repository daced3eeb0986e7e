//! The saga playground: the real saga core driving simulated participants.
//!
//! - [`settings`]: where the reader makes things go wrong, and their keys in the URL;
//! - [`sim`]: the simulation itself: a run of the order-fulfilment saga, computed up front;
//! - [`view`]: the run the page animates, serialised to JSON;
//! - `participants`: the simulated services and the balances they keep;
//! - `wording`: the diagram's labels and the saga log in sentences.

mod participants;
pub mod settings;
pub mod sim;
pub mod view;
mod wording;

pub use settings::{COMPENSATION, Mode, SagaSettings};
pub use sim::run;
pub use view::{Balances, LogView, Message, MessageKind, SagaRun};
