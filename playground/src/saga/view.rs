//! What the saga playground hands the page: the whole run as one [`SagaRun`].
//!
//! These types are serialised to JSON for the page's script (`playground/web/saga.js`), which
//! animates them as a sequence diagram: their field names and the names of their variants are
//! the JSON the script reads, so renaming one breaks the page.

use saga_core::SagaOutcome;
use serde::Serialize;

/// What an arrow of the sequence diagram stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// The client places the order.
    Start,
    /// A step's action is requested (a command, or the event that triggers it).
    Action,
    /// The action succeeded.
    Reply,
    /// The action failed.
    Failure,
    /// A step's compensation is requested.
    Compensation,
    /// The compensation succeeded.
    CompensationReply,
    /// The compensation failed (it will be retried).
    CompensationFailure,
    /// The orchestrator (or a consumer) crashed; the reply in flight is lost.
    Crash,
    /// It restarted and rebuilt the saga from its log.
    Restart,
    /// The saga waits out a retry's backoff.
    Wait,
    /// The saga ended; the client gets the answer.
    Done,
}

/// One saga-log entry as the page shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LogView {
    /// The entry's position in the log.
    pub seq: u64,
    /// When it was recorded.
    pub at: u64,
    /// The event in words.
    pub text: String,
    /// The entry exactly as the core serialises it (what the orchestrator stores).
    pub raw: String,
}

/// What the participants hold after a message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Balances {
    /// The customer's available money.
    pub wallet: u32,
    /// Money the payment service holds for the order (reserved, not yet taken).
    pub money_held: u32,
    /// Money the payment service captured for the order: taken for good after the pivot.
    pub money_captured: u32,
    /// Units on the shelf.
    pub stock: u32,
    /// Units reserved for the order.
    pub stock_reserved: u32,
    /// Whether a courier is booked.
    pub courier_booked: bool,
    /// The order's status, from the core's semantic lock ([`Saga::order_status`](saga_core::Saga::order_status)).
    pub order_status: &'static str,
}

/// One arrow of the sequence diagram, with what it changed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Message {
    /// Lane the arrow starts from.
    pub from: &'static str,
    /// Lane it points to (equal to `from` for a note on one lane).
    pub to: &'static str,
    /// The words on the arrow.
    pub label: String,
    /// What it stands for.
    pub kind: MessageKind,
    /// The operation (`reserve`, `refund`…) for commands and their replies.
    pub op: Option<String>,
    /// The step it concerns.
    pub step: Option<usize>,
    /// The simulated time, in ms.
    pub at: u64,
    /// Log entries the core recorded with this message.
    pub log: Vec<LogView>,
    /// The balances after it.
    pub balances: Balances,
}

/// A whole run: the lanes of the diagram and its messages in order.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SagaRun {
    /// Lane ids, left to right.
    pub lanes: Vec<&'static str>,
    /// The arrows, first to last.
    pub messages: Vec<Message>,
    /// How the saga ended (`None` only if the run was cut short).
    pub outcome: Option<SagaOutcome>,
}
