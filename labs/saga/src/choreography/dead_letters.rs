//! The choreography's dead letters: parking a message that keeps failing, listing what is
//! parked, and the operator's way back, [`redrive`].

use std::sync::Arc;

use rusqlite::OptionalExtension;

use super::{Handled, Service, process_span};
use crate::bus::Message;
use lab_telemetry::client;
use lab_telemetry::messages::TraceHeaders;

/// One parked message, as the operator sees it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DeadLetter {
    /// The service whose consumer parked it.
    pub service: String,
    /// The message's id.
    pub message_id: String,
    /// The event's name (`PaymentReserved`), as the bus carried it.
    pub event: String,
    /// The last error.
    pub error: String,
    /// How many times it was tried.
    pub attempts: i64,
}

/// The dead letters in one service's database, oldest id first.
pub fn dead_letters_of(service: &Service) -> rusqlite::Result<Vec<DeadLetter>> {
    let connection = service.db.lock();
    let mut statement = connection.prepare(
        "SELECT message_id, event, error, attempts FROM dead_letter ORDER BY message_id",
    )?;
    statement
        .query_map([], |row| {
            Ok(DeadLetter {
                service: service.name.to_owned(),
                message_id: row.get(0)?,
                event: row.get(1)?,
                error: row.get(2)?,
                attempts: row.get(3)?,
            })
        })?
        .collect()
}

/// Why a dead letter could not be re-driven.
#[derive(Debug, thiserror::Error)]
pub enum RedriveError {
    /// No such dead letter in that service.
    #[error("{service} has no dead letter `{message_id}`")]
    NotFound {
        /// The service asked.
        service: String,
        /// The id asked for.
        message_id: String,
    },
    /// The message still fails; it stays parked with the new error.
    #[error("{service}: `{message_id}` still fails ({error}); it stays a dead letter")]
    StillFailing {
        /// The service whose dead letter was redriven.
        service: String,
        /// The parked message's id.
        message_id: String,
        /// Why it failed this time.
        error: String,
    },
    /// The database could not be read or written.
    #[error("{0}")]
    Storage(#[from] rusqlite::Error),
}

// ANCHOR: redrive
/// The operator's way back for a dead letter, once its cause is fixed: runs the service's
/// reaction to the parked message again. On success the effect, the inbox row and the next
/// event (in the outbox, for the relay) commit together and the dead letter is gone; on a
/// new failure it stays parked with the new error.
pub fn redrive(service: &Service, message_id: &str) -> Result<(), RedriveError> {
    let parked: Option<(String, String, i64, TraceHeaders)> = service
        .db
        .lock()
        .query_row(
            "SELECT event, payload, attempts, traceparent, tracestate FROM dead_letter
             WHERE message_id = ?1",
            [message_id],
            |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    TraceHeaders::stored(row.get(3)?, row.get(4)?),
                ))
            },
        )
        .optional()?;
    let Some((event, payload, attempts, trace)) = parked else {
        return Err(RedriveError::NotFound {
            service: service.name.to_owned(),
            message_id: message_id.to_owned(),
        });
    };
    let message = Message {
        id: message_id.to_owned(),
        event,
        payload: payload.into_bytes(),
        trace,
    };
    // Handled again in a span of its own that continues the message's trace.
    let span = process_span(service, "dead-letter", &message);
    match client::within(&span, || (service.handler)(&message)) {
        Handled::Done => {
            // Already in the inbox (handled meanwhile) or just handled: nothing left parked.
            service.db.lock().execute(
                "DELETE FROM dead_letter WHERE message_id = ?1",
                [message_id],
            )?;
            Ok(())
        }
        Handled::Retry(error) | Handled::Poison(error) => {
            service.db.lock().execute(
                "UPDATE dead_letter SET error = ?2, attempts = ?3 WHERE message_id = ?1",
                rusqlite::params![message_id, error, attempts + 1],
            )?;
            Err(RedriveError::StillFailing {
                service: service.name.to_owned(),
                message_id: message_id.to_owned(),
                error,
            })
        }
    }
}
// ANCHOR_END: redrive

/// Writes the dead letter (off the async threads: the database may be busy).
pub(super) async fn park(
    service: &Service,
    message: &Message,
    error: &str,
    attempts: u32,
) -> Result<(), String> {
    let db = Arc::clone(&service.db);
    let message = message.clone();
    let error = error.to_owned();
    tokio::task::spawn_blocking(move || {
        db.lock()
            .execute(
                "INSERT OR REPLACE INTO dead_letter
                 (message_id, event, payload, error, attempts, traceparent, tracestate)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                rusqlite::params![
                    message.id,
                    message.event,
                    String::from_utf8_lossy(&message.payload),
                    error,
                    attempts,
                    message.trace.traceparent(),
                    message.trace.tracestate()
                ],
            )
            .map(|_| ())
            .map_err(|error| error.to_string())
    })
    .await
    .unwrap_or_else(|_| Err("the dead-letter writer panicked".to_owned()))
}
