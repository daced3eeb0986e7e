//! The payment service: customer balances and the holds placed on them by orders.
//!
//! `reserve` moves money from a customer's balance into a hold for the order (a business
//! refusal when the balance is short); `refund` releases the hold back to the balance;
//! `capture`, the step after the pivot, takes the held money for good. Money is conserved:
//! balance + held + captured is the same before and after any saga.

use rusqlite::{OptionalExtension, Transaction};
use serde_json::{Value, json};

use crate::line::{OrderLine, Refusal};
use crate::participant::Domain;

/// Payment's business rules.
#[derive(Debug)]
pub struct Payment;

// ANCHOR: payment_reserve
impl Domain for Payment {
    const NAME: &'static str = "payment";
    const ACTION: &'static str = "reserve";
    const COMPENSATION: &'static str = "refund";
    const FINISH: Option<&'static str> = Some("capture");
    const SCHEMA: &'static str = "
        CREATE TABLE IF NOT EXISTS accounts (customer TEXT PRIMARY KEY, balance INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS holds (
            order_id TEXT PRIMARY KEY, customer TEXT NOT NULL, amount INTEGER NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('HELD', 'REFUNDED', 'CAPTURED'))
        );";

    fn act(tx: &Transaction<'_>, line: &OrderLine) -> Result<Value, Refusal> {
        match hold_status(tx, &line.order_id)?.as_deref() {
            // The refund arrived first (a reordered or late message): stay refunded.
            Some("REFUNDED") => {
                return Err(Refusal::Business(format!(
                    "order {} was already refunded",
                    line.order_id
                )));
            }
            // The same order under a new key: a second hold would charge it twice.
            Some(status) => {
                return Err(Refusal::Conflict(format!(
                    "order {} already has a payment {} under another idempotency key; \
                     retry with that key",
                    line.order_id,
                    status.to_lowercase()
                )));
            }
            None => {}
        }
        let balance: Option<i64> = tx
            .query_row(
                "SELECT balance FROM accounts WHERE customer = ?1",
                [&line.customer],
                |row| row.get(0),
            )
            .optional()?;
        let balance = balance.ok_or_else(|| {
            Refusal::Business(format!("customer {} has no account", line.customer))
        })?;
        if balance < line.amount {
            return Err(Refusal::Business(format!(
                "insufficient funds: {} has {balance} cents, the order needs {}",
                line.customer, line.amount
            )));
        }
        tx.execute(
            "UPDATE accounts SET balance = balance - ?2 WHERE customer = ?1",
            rusqlite::params![line.customer, line.amount],
        )?;
        tx.execute(
            "INSERT INTO holds (order_id, customer, amount, status) VALUES (?1, ?2, ?3, 'HELD')",
            rusqlite::params![line.order_id, line.customer, line.amount],
        )?;
        Ok(json!({ "held": line.amount, "balance": balance - line.amount }))
    }
    // ANCHOR_END: payment_reserve

    fn compensate(tx: &Transaction<'_>, line: &OrderLine) -> Result<Value, Refusal> {
        match hold_status(tx, &line.order_id)?.as_deref() {
            Some("CAPTURED") => Err(Refusal::Business(format!(
                "order {} was captured: after the pivot a refund is a new payment, not a \
                 compensation",
                line.order_id
            ))),
            Some("HELD") => {
                let (customer, amount): (String, i64) = tx.query_row(
                    "SELECT customer, amount FROM holds WHERE order_id = ?1",
                    [&line.order_id],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )?;
                tx.execute(
                    "UPDATE accounts SET balance = balance + ?2 WHERE customer = ?1",
                    rusqlite::params![customer, amount],
                )?;
                tx.execute(
                    "UPDATE holds SET status = 'REFUNDED' WHERE order_id = ?1",
                    [&line.order_id],
                )?;
                Ok(json!({ "refunded": amount }))
            }
            Some(_) => Ok(json!({ "refunded": 0, "note": "already refunded" })),
            None => {
                // Nothing was held (the reserve never arrived, or was refused): leave a
                // tombstone so a reserve arriving later is refused instead of holding money.
                tx.execute(
                    "INSERT INTO holds (order_id, customer, amount, status) VALUES (?1, ?2, 0, 'REFUNDED')",
                    rusqlite::params![line.order_id, line.customer],
                )?;
                Ok(json!({ "refunded": 0, "note": "nothing was held" }))
            }
        }
    }

    // ANCHOR: payment_capture
    fn finish(tx: &Transaction<'_>, line: &OrderLine) -> Result<Value, Refusal> {
        match hold_status(tx, &line.order_id)?.as_deref() {
            Some("HELD") => {
                let amount: i64 = tx.query_row(
                    "SELECT amount FROM holds WHERE order_id = ?1",
                    [&line.order_id],
                    |row| row.get(0),
                )?;
                tx.execute(
                    "UPDATE holds SET status = 'CAPTURED' WHERE order_id = ?1",
                    [&line.order_id],
                )?;
                Ok(json!({ "captured": amount }))
            }
            Some("CAPTURED") => Ok(json!({ "captured": 0, "note": "already captured" })),
            _ => Err(Refusal::Business(format!(
                "order {} has no money held to capture",
                line.order_id
            ))),
        }
    }
    // ANCHOR_END: payment_capture

    fn holdings(connection: &rusqlite::Connection) -> rusqlite::Result<Value> {
        let balance: i64 = connection.query_row(
            "SELECT COALESCE(SUM(balance), 0) FROM accounts",
            [],
            |row| row.get(0),
        )?;
        let held: i64 = connection.query_row(
            "SELECT COALESCE(SUM(amount), 0) FROM holds WHERE status = 'HELD'",
            [],
            |row| row.get(0),
        )?;
        let captured: i64 = connection.query_row(
            "SELECT COALESCE(SUM(amount), 0) FROM holds WHERE status = 'CAPTURED'",
            [],
            |row| row.get(0),
        )?;
        // `captured` appears once something was: the books of a saga that never reached
        // its capture read as before.
        Ok(if captured == 0 {
            json!({ "balance": balance, "held": held })
        } else {
            json!({ "balance": balance, "held": held, "captured": captured })
        })
    }
}

fn hold_status(tx: &Transaction<'_>, order_id: &str) -> rusqlite::Result<Option<String>> {
    tx.query_row(
        "SELECT status FROM holds WHERE order_id = ?1",
        [order_id],
        |row| row.get(0),
    )
    .optional()
}

/// Gives `customer` an account with `balance` cents (demo and tests).
pub fn open_account(
    connection: &rusqlite::Connection,
    customer: &str,
    balance: i64,
) -> rusqlite::Result<()> {
    connection.execute(
        "INSERT INTO accounts (customer, balance) VALUES (?1, ?2)
         ON CONFLICT (customer) DO UPDATE SET balance = excluded.balance",
        rusqlite::params![customer, balance],
    )?;
    Ok(())
}

/// Money held for one order (0 if none).
pub fn held_for(connection: &rusqlite::Connection, order_id: &str) -> rusqlite::Result<i64> {
    connection.query_row(
        "SELECT COALESCE(SUM(amount), 0) FROM holds WHERE order_id = ?1 AND status = 'HELD'",
        [order_id],
        |row| row.get(0),
    )
}

/// Money captured for one order (0 if none).
pub fn captured_for(connection: &rusqlite::Connection, order_id: &str) -> rusqlite::Result<i64> {
    connection.query_row(
        "SELECT COALESCE(SUM(amount), 0) FROM holds WHERE order_id = ?1 AND status = 'CAPTURED'",
        [order_id],
        |row| row.get(0),
    )
}
