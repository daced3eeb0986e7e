//! The data every step of the order saga carries, and how a participant answers.

use serde::{Deserialize, Serialize};

use crate::problem::{self, Problem};

// ANCHOR: order_line
/// One order, as the saga's steps see it: who pays how much for how many of what.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    /// The order's id (also the saga's id).
    pub order_id: String,
    /// The paying customer's account.
    pub customer: String,
    /// The product's stock-keeping unit, as the inventory service knows it.
    pub sku: String,
    /// How many.
    pub quantity: i64,
    /// The price in cents.
    pub amount: i64,
}
// ANCHOR_END: order_line

impl OrderLine {
    /// Checks what a handler must never trust: ids present, quantities and amounts positive.
    pub fn validate(&self) -> Result<(), Problem> {
        for (field, value) in [
            ("order_id", &self.order_id),
            ("customer", &self.customer),
            ("sku", &self.sku),
        ] {
            if value.trim().is_empty() || value.len() > 200 {
                return Err(problem::bad_request(format!(
                    "`{field}` must be a non-empty string of at most 200 characters"
                )));
            }
        }
        if self.quantity <= 0 || self.quantity > 1_000_000 {
            return Err(problem::bad_request(
                "`quantity` must be between 1 and 1000000",
            ));
        }
        if self.amount <= 0 || self.amount > 1_000_000_000 {
            return Err(problem::bad_request(
                "`amount` must be between 1 and 1000000000 cents",
            ));
        }
        Ok(())
    }
}

/// Why a participant did not do what was asked.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A business "no": insufficient funds, out of stock, no courier. Final.
    #[error("{0}")]
    Business(String),
    /// The request contradicts what is held (the same order under another idempotency
    /// key): answered 409 and not stored, since nothing was done.
    #[error("{0}")]
    Conflict(String),
    /// The database failed: worth a retry.
    #[error("storage: {0}")]
    Storage(String),
}

impl From<rusqlite::Error> for Refusal {
    fn from(error: rusqlite::Error) -> Self {
        Refusal::Storage(error.to_string())
    }
}

/// A participant's answer to one command, as stored under its idempotency key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// The HTTP status (200, 422, 503…).
    pub status: u16,
    /// The JSON body (a result or a problem document).
    pub body: serde_json::Value,
}

impl Reply {
    /// Whether the command succeeded.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    // ANCHOR: is_business_refusal
    /// Whether it is a final refusal rather than a failure worth a retry: a 4xx, except
    /// 408 (the request timed out), 409 (a conflict that may clear), 425 (too early) and
    /// 429 (too many requests), which say "not now" rather than "no".
    pub fn is_business_refusal(&self) -> bool {
        (400..500).contains(&self.status) && !matches!(self.status, 408 | 409 | 425 | 429)
    }
    // ANCHOR_END: is_business_refusal

    /// The problem's `detail`, or the body, for narration.
    pub fn detail(&self) -> String {
        self.body
            .get("detail")
            .and_then(|detail| detail.as_str())
            .map_or_else(|| self.body.to_string(), str::to_owned)
    }
}
