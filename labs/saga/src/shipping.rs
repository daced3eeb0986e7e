//! The shipping service: courier slots, and the deliveries scheduled on them.
//!
//! `schedule` takes a courier slot for the order (a business refusal when none is free);
//! `cancel` gives it back. Scheduling is the saga's pivot: once a courier is booked, the
//! order goes through.

use rusqlite::{OptionalExtension, Transaction};
use serde_json::{Value, json};

use crate::line::{OrderLine, Refusal};
use crate::participant::Domain;

/// Shipping's business rules.
#[derive(Debug)]
pub struct Shipping;

impl Domain for Shipping {
    const NAME: &'static str = "shipping";
    const ACTION: &'static str = "schedule";
    const COMPENSATION: &'static str = "cancel";
    const SCHEMA: &'static str = "
        CREATE TABLE IF NOT EXISTS couriers (id INTEGER PRIMARY KEY CHECK (id = 1), free_slots INTEGER NOT NULL);
        INSERT OR IGNORE INTO couriers (id, free_slots) VALUES (1, 0);
        CREATE TABLE IF NOT EXISTS deliveries (
            order_id TEXT PRIMARY KEY,
            status TEXT NOT NULL CHECK (status IN ('SCHEDULED', 'CANCELLED'))
        );";

    fn act(tx: &Transaction<'_>, line: &OrderLine) -> Result<Value, Refusal> {
        match delivery_status(tx, &line.order_id)?.as_deref() {
            Some("CANCELLED") => {
                return Err(Refusal::Business(format!(
                    "delivery of order {} was already cancelled",
                    line.order_id
                )));
            }
            // The same order under a new key: a second delivery would book two couriers.
            Some(_) => {
                return Err(Refusal::Conflict(format!(
                    "order {} already has a courier booked under another idempotency key; \
                     retry with that key",
                    line.order_id
                )));
            }
            None => {}
        }
        let free: i64 =
            tx.query_row("SELECT free_slots FROM couriers WHERE id = 1", [], |row| {
                row.get(0)
            })?;
        if free < 1 {
            return Err(Refusal::Business("no courier available".to_owned()));
        }
        tx.execute(
            "UPDATE couriers SET free_slots = free_slots - 1 WHERE id = 1",
            [],
        )?;
        tx.execute(
            "INSERT INTO deliveries (order_id, status) VALUES (?1, 'SCHEDULED')",
            [&line.order_id],
        )?;
        Ok(json!({ "scheduled": true }))
    }

    fn compensate(tx: &Transaction<'_>, line: &OrderLine) -> Result<Value, Refusal> {
        match delivery_status(tx, &line.order_id)?.as_deref() {
            Some("SCHEDULED") => {
                tx.execute(
                    "UPDATE couriers SET free_slots = free_slots + 1 WHERE id = 1",
                    [],
                )?;
                tx.execute(
                    "UPDATE deliveries SET status = 'CANCELLED' WHERE order_id = ?1",
                    [&line.order_id],
                )?;
                Ok(json!({ "cancelled": true }))
            }
            Some(_) => Ok(json!({ "cancelled": false, "note": "already cancelled" })),
            None => {
                tx.execute(
                    "INSERT INTO deliveries (order_id, status) VALUES (?1, 'CANCELLED')",
                    [&line.order_id],
                )?;
                Ok(json!({ "cancelled": false, "note": "nothing was scheduled" }))
            }
        }
    }

    fn holdings(connection: &rusqlite::Connection) -> rusqlite::Result<Value> {
        let free: i64 =
            connection.query_row("SELECT free_slots FROM couriers WHERE id = 1", [], |row| {
                row.get(0)
            })?;
        let scheduled: i64 = connection.query_row(
            "SELECT COUNT(*) FROM deliveries WHERE status = 'SCHEDULED'",
            [],
            |row| row.get(0),
        )?;
        Ok(json!({ "free_slots": free, "scheduled": scheduled }))
    }
}

fn delivery_status(tx: &Transaction<'_>, order_id: &str) -> rusqlite::Result<Option<String>> {
    tx.query_row(
        "SELECT status FROM deliveries WHERE order_id = ?1",
        [order_id],
        |row| row.get(0),
    )
    .optional()
}

/// Sets the number of free courier slots (demo and tests).
pub fn set_free_slots(connection: &rusqlite::Connection, slots: i64) -> rusqlite::Result<()> {
    connection.execute("UPDATE couriers SET free_slots = ?1 WHERE id = 1", [slots])?;
    Ok(())
}

/// Whether a delivery is scheduled for the order.
pub fn scheduled_for(connection: &rusqlite::Connection, order_id: &str) -> rusqlite::Result<bool> {
    connection.query_row(
        "SELECT COUNT(*) FROM deliveries WHERE order_id = ?1 AND status = 'SCHEDULED'",
        [order_id],
        |row| row.get::<_, i64>(0).map(|n| n > 0),
    )
}
