//! The saga's simulated participants: the order, payment, inventory and shipping services,
//! with the balances they keep and the idempotency table each one answers repeats from.
//! Payment holds the money at its reserve and captures it after the pivot, as the lab's
//! payment service does.

use std::collections::BTreeMap;

use saga_core::{Command, CommandKind, OrderStatus};

use crate::saga::view::Balances;

/// The participants' state: money, stock, courier, and each one's idempotency table.
#[derive(Clone, Debug)]
pub(crate) struct Participants {
    wallet: u32,
    money_held: u32,
    money_captured: u32,
    stock: u32,
    stock_reserved: u32,
    courier_booked: bool,
    /// Answers already given, by idempotency key: a repeated key gets the same answer.
    answered: BTreeMap<String, Answer>,
}

/// A participant's answer to one command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Answer {
    /// Whether the participant did what was asked.
    pub(crate) ok: bool,
    /// Why not, in the participant's words (empty when it did).
    pub(crate) reason: String,
    /// Whether it came from the idempotency table.
    pub(crate) duplicate: bool,
}

/// The order's price, and the customer's money before it.
const PRICE: u32 = 30;
const WALLET: u32 = 100;
const STOCK: u32 = 5;

impl Participants {
    /// The participants before the order: a full wallet and a full shelf.
    pub(crate) fn new() -> Participants {
        Participants {
            wallet: WALLET,
            money_held: 0,
            money_captured: 0,
            stock: STOCK,
            stock_reserved: 0,
            courier_booked: false,
            answered: BTreeMap::new(),
        }
    }

    /// What they hold, for the page, with the order's status from the core.
    pub(crate) fn balances(&self, status: OrderStatus) -> Balances {
        Balances {
            wallet: self.wallet,
            money_held: self.money_held,
            money_captured: self.money_captured,
            stock: self.stock,
            stock_reserved: self.stock_reserved,
            courier_booked: self.courier_booked,
            order_status: status.as_str(),
        }
    }

    /// Performs `command` unless its key was seen; `refuse` makes the action fail for a
    /// business reason, `time_out` makes a compensation fail without doing anything.
    pub(crate) fn handle(&mut self, command: &Command, refuse: bool, time_out: bool) -> Answer {
        if let Some(first) = self.answered.get(&command.idempotency_key) {
            return Answer {
                duplicate: true,
                ..first.clone()
            };
        }
        if time_out {
            // A timeout is not an answer: nothing done, nothing remembered, try again.
            return Answer {
                ok: false,
                reason: "timed out".into(),
                duplicate: false,
            };
        }
        let compensation = command.kind == CommandKind::Compensation;
        let answer = if refuse && !compensation {
            let reason = match command.step {
                1 => "insufficient funds",
                2 => "out of stock",
                _ => "no courier available",
            };
            Answer {
                ok: false,
                reason: reason.into(),
                duplicate: false,
            }
        } else {
            match (command.step, compensation) {
                (1, false) => {
                    self.wallet -= PRICE;
                    self.money_held += PRICE;
                }
                (1, true) => {
                    self.wallet += PRICE;
                    self.money_held -= PRICE;
                }
                (2, false) => {
                    self.stock -= 1;
                    self.stock_reserved += 1;
                }
                (2, true) => {
                    self.stock += 1;
                    self.stock_reserved -= 1;
                }
                (3, compensation) => self.courier_booked = !compensation,
                // capture_payment, after the pivot: the held money is taken for good.
                (4, false) => {
                    self.money_held -= PRICE;
                    self.money_captured += PRICE;
                }
                // The order service's own steps change only the order's status, which is
                // the core's semantic lock.
                _ => {}
            }
            Answer {
                ok: true,
                reason: String::new(),
                duplicate: false,
            }
        };
        self.answered
            .insert(command.idempotency_key.clone(), answer.clone());
        answer
    }
}
