//! The inventory service: stock per product and the reservations orders place on it.
//!
//! `reserve` moves units from available to reserved (a business refusal when there are not
//! enough); `release` moves them back. Stock is conserved: available + reserved is constant.

use rusqlite::{OptionalExtension, Transaction};
use serde_json::{Value, json};

use crate::line::{OrderLine, Refusal};
use crate::participant::Domain;

/// Inventory's business rules.
#[derive(Debug)]
pub struct Inventory;

impl Domain for Inventory {
    const NAME: &'static str = "inventory";
    const ACTION: &'static str = "reserve";
    const COMPENSATION: &'static str = "release";
    const SCHEMA: &'static str = "
        CREATE TABLE IF NOT EXISTS stock (sku TEXT PRIMARY KEY, available INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS reservations (
            order_id TEXT PRIMARY KEY, sku TEXT NOT NULL, quantity INTEGER NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('RESERVED', 'RELEASED'))
        );";

    fn act(tx: &Transaction<'_>, line: &OrderLine) -> Result<Value, Refusal> {
        match reservation_status(tx, &line.order_id)?.as_deref() {
            Some("RELEASED") => {
                return Err(Refusal::Business(format!(
                    "order {} was already released",
                    line.order_id
                )));
            }
            // The same order under a new key: a second reservation would take stock twice.
            Some(_) => {
                return Err(Refusal::Conflict(format!(
                    "order {} already has stock reserved under another idempotency key; \
                     retry with that key",
                    line.order_id
                )));
            }
            None => {}
        }
        let available: Option<i64> = tx
            .query_row(
                "SELECT available FROM stock WHERE sku = ?1",
                [&line.sku],
                |row| row.get(0),
            )
            .optional()?;
        let available = available.unwrap_or(0);
        if available < line.quantity {
            return Err(Refusal::Business(format!(
                "out of stock: {} has {available} left, the order needs {}",
                line.sku, line.quantity
            )));
        }
        tx.execute(
            "UPDATE stock SET available = available - ?2 WHERE sku = ?1",
            rusqlite::params![line.sku, line.quantity],
        )?;
        tx.execute(
            "INSERT INTO reservations (order_id, sku, quantity, status) VALUES (?1, ?2, ?3, 'RESERVED')",
            rusqlite::params![line.order_id, line.sku, line.quantity],
        )?;
        Ok(json!({ "reserved": line.quantity, "available": available - line.quantity }))
    }

    fn compensate(tx: &Transaction<'_>, line: &OrderLine) -> Result<Value, Refusal> {
        match reservation_status(tx, &line.order_id)?.as_deref() {
            Some("RESERVED") => {
                let (sku, quantity): (String, i64) = tx.query_row(
                    "SELECT sku, quantity FROM reservations WHERE order_id = ?1",
                    [&line.order_id],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )?;
                tx.execute(
                    "UPDATE stock SET available = available + ?2 WHERE sku = ?1",
                    rusqlite::params![sku, quantity],
                )?;
                tx.execute(
                    "UPDATE reservations SET status = 'RELEASED' WHERE order_id = ?1",
                    [&line.order_id],
                )?;
                Ok(json!({ "released": quantity }))
            }
            Some(_) => Ok(json!({ "released": 0, "note": "already released" })),
            None => {
                tx.execute(
                    "INSERT INTO reservations (order_id, sku, quantity, status) VALUES (?1, ?2, 0, 'RELEASED')",
                    rusqlite::params![line.order_id, line.sku],
                )?;
                Ok(json!({ "released": 0, "note": "nothing was reserved" }))
            }
        }
    }

    fn holdings(connection: &rusqlite::Connection) -> rusqlite::Result<Value> {
        let available: i64 =
            connection.query_row("SELECT COALESCE(SUM(available), 0) FROM stock", [], |row| {
                row.get(0)
            })?;
        let reserved: i64 = connection.query_row(
            "SELECT COALESCE(SUM(quantity), 0) FROM reservations WHERE status = 'RESERVED'",
            [],
            |row| row.get(0),
        )?;
        Ok(json!({ "available": available, "reserved": reserved }))
    }
}

fn reservation_status(tx: &Transaction<'_>, order_id: &str) -> rusqlite::Result<Option<String>> {
    tx.query_row(
        "SELECT status FROM reservations WHERE order_id = ?1",
        [order_id],
        |row| row.get(0),
    )
    .optional()
}

/// Puts `available` units of `sku` on the shelf (demo and tests).
pub fn stock(connection: &rusqlite::Connection, sku: &str, available: i64) -> rusqlite::Result<()> {
    connection.execute(
        "INSERT INTO stock (sku, available) VALUES (?1, ?2)
         ON CONFLICT (sku) DO UPDATE SET available = excluded.available",
        rusqlite::params![sku, available],
    )?;
    Ok(())
}

/// Units reserved for one order (0 if none).
pub fn reserved_for(connection: &rusqlite::Connection, order_id: &str) -> rusqlite::Result<i64> {
    connection.query_row(
        "SELECT COALESCE(SUM(quantity), 0) FROM reservations WHERE order_id = ?1 AND status = 'RESERVED'",
        [order_id],
        |row| row.get(0),
    )
}
