//! What travels over HTTP: the append request, read by hand from JSON so every mistake gets
//! its own sentence, the limits it is held to, and events as the API shows them (upcast to
//! today's schema, with the schema they were written with).

use event_sourcing_core::schema::current_schema;
use event_sourcing_core::{ExpectedVersion, NewEvent, Recorded, schema::upcast};
use serde::Serialize;
use serde_json::Value;

// ANCHOR: limits
/// The most events one append may carry.
pub const MAX_BATCH: usize = 1_000;
/// The largest `data` of one event, as JSON text.
pub const MAX_EVENT_BYTES: usize = 64 * 1024;
/// The largest request body.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
/// The longest stream name and event id.
pub const MAX_NAME: usize = 128;
/// The most events one read returns.
pub const MAX_READ: usize = 10_000;
// ANCHOR_END: limits

/// A parsed append request.
#[derive(Debug)]
pub struct AppendRequest {
    /// What the writer expects of the stream.
    pub expected: ExpectedVersion,
    /// The batch, at the schemas it names.
    pub events: Vec<NewEvent>,
}

/// Checks a stream name: 1 to 128 of `A-Z a-z 0-9 . _ -`, not starting with `$`.
pub fn check_stream(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(format!("a stream name has 1 to {MAX_NAME} characters"));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "stream names use A-Z, a-z, 0-9, '.', '_' and '-'; {bad:?} is not allowed"
        ));
    }
    Ok(())
}

/// Reads an expected version from JSON: `"any"`, `"no-stream"`, `"stream-exists"` or a
/// version number (0 or more).
pub fn expected_version(value: &Value) -> Result<ExpectedVersion, String> {
    match value {
        Value::String(text) => text.parse(),
        Value::Number(number) => number.as_u64().map(ExpectedVersion::Exact).ok_or_else(|| {
            format!("expected_version {number} is not a version: versions are 0 or more")
        }),
        other => Err(format!(
            "expected_version must be \"any\", \"no-stream\", \"stream-exists\" or a number, \
             not {other}"
        )),
    }
}

/// Parses the append body `{"expected_version": …, "events": [{"event_id", "type",
/// "schema"?, "data"}]}`. Errors are `(status 400 or 413, detail)`.
pub fn append_request(body: &[u8]) -> Result<AppendRequest, (u16, String)> {
    let bad = |detail: String| (400, detail);
    let value: Value = serde_json::from_slice(body)
        .map_err(|error| bad(format!("the body is not JSON: {error}")))?;
    let Value::Object(mut fields) = value else {
        return Err(bad("the body must be a JSON object".into()));
    };
    let expected = expected_version(
        fields
            .get("expected_version")
            .ok_or_else(|| bad("expected_version is missing".into()))?,
    )
    .map_err(bad)?;
    let Some(Value::Array(events)) = fields.remove("events") else {
        return Err(bad("events must be an array of events".into()));
    };
    if events.is_empty() {
        return Err(bad(
            "events is empty: an append needs at least one event".into()
        ));
    }
    if events.len() > MAX_BATCH {
        return Err((
            413,
            format!(
                "{} events in one append; the limit is {MAX_BATCH}",
                events.len()
            ),
        ));
    }
    let events = events
        .into_iter()
        .enumerate()
        .map(|(index, event)| new_event(index, event))
        .collect::<Result<_, _>>()?;
    Ok(AppendRequest { expected, events })
}

fn new_event(index: usize, event: Value) -> Result<NewEvent, (u16, String)> {
    let bad = |detail: String| (400, format!("event {index}: {detail}"));
    let Value::Object(mut event) = event else {
        return Err(bad("an event is a JSON object".into()));
    };
    let event_id = match event.remove("event_id") {
        Some(Value::String(id)) if !id.is_empty() && id.len() <= MAX_NAME => id,
        _ => {
            return Err(bad(format!(
                "event_id must be a string of 1 to {MAX_NAME} bytes"
            )));
        }
    };
    let event_type = match event.remove("type") {
        Some(Value::String(name)) => name,
        _ => return Err(bad("type must be a string naming the event type".into())),
    };
    let Some(today) = current_schema(&event_type) else {
        return Err((
            422,
            format!(
                "event {index}: {}",
                event_sourcing_core::DecodeError::UnknownType(event_type)
            ),
        ));
    };
    let schema = match event.remove("schema") {
        None => today,
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| bad(format!("schema {n} is not a schema number")))?,
        Some(other) => return Err(bad(format!("schema must be a number, not {other}"))),
    };
    let data = event
        .remove("data")
        .ok_or_else(|| bad("data is missing".into()))?;
    let size = data.to_string().len();
    if size > MAX_EVENT_BYTES {
        return Err((
            413,
            format!("event {index}: data is {size} bytes; the limit is {MAX_EVENT_BYTES}"),
        ));
    }
    Ok(NewEvent {
        event_id,
        event_type,
        schema,
        data,
    })
}

/// An event as the API shows it: its payload upcast to today's schema.
#[derive(Debug, Serialize)]
pub struct WireEvent {
    /// Its `$all` position.
    pub position: u64,
    /// Its stream.
    pub stream: String,
    /// Its version in the stream.
    pub version: u64,
    /// The writer's id.
    pub event_id: String,
    /// The event type.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Today's schema of its type (what `data` is in).
    pub schema: u32,
    /// The schema it was written with.
    pub written_schema: u32,
    /// The payload, upcast.
    pub data: Value,
}

impl From<Recorded> for WireEvent {
    fn from(event: Recorded) -> WireEvent {
        let (schema, data) = match upcast(&event.event_type, event.schema, event.data.clone()) {
            Ok(data) => (
                current_schema(&event.event_type).unwrap_or(event.schema),
                data,
            ),
            // A payload that does not upcast is shown as written.
            Err(_) => (event.schema, event.data),
        };
        WireEvent {
            position: event.position,
            stream: event.stream,
            version: event.version,
            event_id: event.event_id,
            event_type: event.event_type,
            schema,
            written_schema: event.schema,
            data,
        }
    }
}
