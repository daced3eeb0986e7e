//! The NATS JetStream backend: one JetStream stream holds every event, one subject per event
//! stream (`<root>.<stream>`), so the JetStream sequence is the `$all` position. Optimistic
//! concurrency is `Nats-Expected-Last-Subject-Sequence` (the sequence of the stream's last
//! event, which the server checks atomically with the write); idempotency is `Nats-Msg-Id`
//! (`<stream>/<event id>`), which the server checks *before* the expected sequence, so a retry
//! is recognised whatever it expected. Each event's version, id, type and schema travel in
//! headers. Snapshots live in a second stream that keeps one message per subject.
//!
//! Two differences from SQLite, both nats-server 2.9's: a batch is published one message at a
//! time, each expecting the one before, so no other writer can interleave, but a writer that
//! dies mid-batch leaves its first events (a retry of the same batch completes it, because the
//! written ones are recognised by id); and ids are remembered for the stream's duplicate
//! window (an hour here), not for ever.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, context::PublishErrorKind, stream};
use event_sourcing_core::{
    AppendError, Appended, Conflict, ExpectedVersion, NewEvent, Recorded, Snapshot, check_expected,
};
use futures::StreamExt;
use tokio::sync::broadcast;

use crate::{BoxFuture, EventStore, LIVE_CHANNEL, StoreError};

/// How long JetStream remembers an event id.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(3_600);

const VERSION: &str = "Es-Version";
const EVENT_ID: &str = "Es-Event-Id";
const EVENT_TYPE: &str = "Es-Type";
const SCHEMA: &str = "Es-Schema";
const STREAM: &str = "Es-Stream";

/// Streams in one JetStream stream.
pub struct JetStream {
    context: jetstream::Context,
    stream: String,
    root: String,
    snapshots: String,
    live: broadcast::Sender<Recorded>,
}

fn backend(error: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(error.to_string())
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|value| value.as_str())
}

fn recorded(sequence: u64, headers: &HeaderMap, payload: &[u8]) -> Result<Recorded, StoreError> {
    let missing = |name: &str| backend(format!("message {sequence} has no {name} header"));
    Ok(Recorded {
        position: sequence,
        stream: header(headers, STREAM)
            .ok_or_else(|| missing(STREAM))?
            .to_owned(),
        version: header(headers, VERSION)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| missing(VERSION))?,
        event_id: header(headers, EVENT_ID)
            .ok_or_else(|| missing(EVENT_ID))?
            .to_owned(),
        event_type: header(headers, EVENT_TYPE)
            .ok_or_else(|| missing(EVENT_TYPE))?
            .to_owned(),
        schema: header(headers, SCHEMA)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| missing(SCHEMA))?,
        data: serde_json::from_slice(payload).map_err(backend)?,
    })
}

impl JetStream {
    /// Connects to `url` and keeps streams in the JetStream stream `name` on subjects
    /// `<root>.…` (created if missing), snapshots in the stream `<name>_SNAPSHOTS`.
    pub async fn connect(url: &str, name: &str, root: &str) -> Result<JetStream, StoreError> {
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(5))
            .connect(url)
            .await
            .map_err(|error| backend(format!("cannot connect to NATS at {url}: {error}")))?;
        let context = jetstream::new(client);
        context
            .get_or_create_stream(stream::Config {
                name: name.to_owned(),
                subjects: vec![format!("{root}.>")],
                duplicate_window: DUPLICATE_WINDOW,
                ..Default::default()
            })
            .await
            .map_err(|error| backend(format!("cannot keep the stream {name}: {error}")))?;
        // Snapshots: a second stream keeping the last message per subject (a key-value bucket
        // in all but name, which nats-server 2.9 and this client disagree about).
        let snapshots = format!("{name}_SNAPSHOTS");
        context
            .get_or_create_stream(stream::Config {
                name: snapshots.clone(),
                subjects: vec![format!("{root}_snapshots.>")],
                max_messages_per_subject: 1,
                ..Default::default()
            })
            .await
            .map_err(|error| backend(format!("cannot keep the stream {snapshots}: {error}")))?;
        let (live, _) = broadcast::channel(LIVE_CHANNEL);
        let store = JetStream {
            context,
            stream: name.to_owned(),
            root: root.to_owned(),
            snapshots,
            live,
        };
        store.follow().await?;
        Ok(store)
    }

    /// Forwards every message stored from now on to the live channel.
    async fn follow(&self) -> Result<(), StoreError> {
        let stream = self
            .context
            .get_stream(&self.stream)
            .await
            .map_err(backend)?;
        let consumer = stream
            .create_consumer(jetstream::consumer::push::OrderedConfig {
                deliver_subject: self.context_inbox(),
                filter_subject: format!("{}.>", self.root),
                deliver_policy: jetstream::consumer::DeliverPolicy::New,
                ..Default::default()
            })
            .await
            .map_err(|error| backend(format!("cannot follow the stream: {error}")))?;
        let mut messages = consumer.messages().await.map_err(backend)?;
        let live = self.live.clone();
        tokio::spawn(async move {
            while let Some(Ok(message)) = messages.next().await {
                let Ok(info) = message.info() else { continue };
                let sequence = info.stream_sequence;
                let headers = message.headers.clone().unwrap_or_default();
                if let Ok(event) = recorded(sequence, &headers, &message.payload) {
                    let _ = live.send(event);
                }
            }
        });
        Ok(())
    }

    fn context_inbox(&self) -> String {
        format!("_INBOX.es.{}.{}", self.stream, std::process::id())
    }

    fn subject(&self, stream: &str) -> String {
        format!("{}.{stream}", self.root)
    }

    async fn handle(&self) -> Result<stream::Stream, StoreError> {
        self.context.get_stream(&self.stream).await.map_err(backend)
    }

    /// The stream's version and the JetStream sequence of its last event (0, 0 when empty).
    async fn last(&self, stream: &str) -> Result<(u64, u64), StoreError> {
        match self
            .handle()
            .await?
            .get_last_raw_message_by_subject(&self.subject(stream))
            .await
        {
            Ok(message) => {
                let event = recorded(message.sequence, &message.headers, &message.payload)?;
                Ok((event.version, message.sequence))
            }
            Err(error) if error.kind() == stream::LastRawMessageErrorKind::NoMessageFound => {
                Ok((0, 0))
            }
            Err(error) => Err(backend(error)),
        }
    }

    /// Publishes one event expecting the subject's last sequence to be `after`; `Ok(None)`
    /// when the expectation failed and nothing was written.
    async fn publish(
        &self,
        stream: &str,
        version: u64,
        after: u64,
        event: &NewEvent,
    ) -> Result<Option<async_nats::jetstream::publish::PublishAck>, StoreError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            "Nats-Msg-Id",
            format!("{stream}/{}", event.event_id).as_str(),
        );
        headers.insert(
            "Nats-Expected-Last-Subject-Sequence",
            after.to_string().as_str(),
        );
        headers.insert(STREAM, stream);
        headers.insert(VERSION, version.to_string().as_str());
        headers.insert(EVENT_ID, event.event_id.as_str());
        headers.insert(EVENT_TYPE, event.event_type.as_str());
        headers.insert(SCHEMA, event.schema.to_string().as_str());
        let sent = self
            .context
            .publish_with_headers(self.subject(stream), headers, event.data.to_string().into())
            .await
            .map_err(backend)?
            .await;
        match sent {
            Ok(ack) => Ok(Some(ack)),
            Err(error) if error.kind() == PublishErrorKind::WrongLastSequence => Ok(None),
            Err(error) => Err(backend(error)),
        }
    }

    /// The version header of the message at `sequence`.
    async fn version_at(&self, sequence: u64) -> Result<u64, StoreError> {
        let message = self
            .handle()
            .await?
            .get_raw_message(sequence)
            .await
            .map_err(backend)?;
        Ok(recorded(message.sequence, &message.headers, &message.payload)?.version)
    }

    /// A batch whose first event was a duplicate: the rest must be too (a retry), probed with
    /// an expectation that cannot hold, so nothing new is written.
    async fn retried(
        &self,
        stream: &str,
        batch: &[NewEvent],
        first: async_nats::jetstream::publish::PublishAck,
    ) -> Result<Appended, StoreError> {
        let mut last = first;
        for event in &batch[1..] {
            match self.publish(stream, 0, u64::MAX, event).await? {
                Some(ack) if ack.duplicate => last = ack,
                _ => {
                    return Err(AppendError::PartlyAppended {
                        present: batch[0].event_id.clone(),
                        missing: event.event_id.clone(),
                    }
                    .into());
                }
            }
        }
        let version = self.version_at(last.sequence).await?;
        Ok(Appended {
            first_version: (version + 1).saturating_sub(batch.len() as u64),
            version,
            position: last.sequence,
            already_appended: true,
        })
    }
}

impl EventStore for JetStream {
    fn append<'a>(
        &'a self,
        stream: &'a str,
        expected: ExpectedVersion,
        batch: Vec<NewEvent>,
    ) -> BoxFuture<'a, Result<Appended, StoreError>> {
        Box::pin(async move {
            let ids: Vec<&str> = batch.iter().map(|e| e.event_id.as_str()).collect();
            // Empty batches and repeated ids, with no store to ask.
            event_sourcing_core::plan_append(ExpectedVersion::Any, 0, &ids, |_| None)?;
            let (current, last_sequence) = self.last(stream).await?;
            if let Err(conflict) = check_expected(expected, current) {
                // A retry is recognised before the expectation: probe the first id.
                return match self.publish(stream, 0, u64::MAX, &batch[0]).await? {
                    Some(ack) if ack.duplicate => self.retried(stream, &batch, ack).await,
                    _ => Err(AppendError::Conflict(conflict).into()),
                };
            }
            let mut after = last_sequence;
            let mut position = 0;
            for (offset, event) in batch.iter().enumerate() {
                let version = current + 1 + offset as u64;
                match self.publish(stream, version, after, event).await? {
                    Some(ack) if ack.duplicate && offset == 0 => {
                        return self.retried(stream, &batch, ack).await;
                    }
                    Some(ack) => {
                        after = ack.sequence;
                        position = ack.sequence;
                    }
                    None if offset == 0 => {
                        // Another writer got in between our read and our write.
                        let (now, _) = self.last(stream).await?;
                        return Err(AppendError::Conflict(Conflict {
                            expected,
                            current: now,
                        })
                        .into());
                    }
                    None => {
                        return Err(backend(format!(
                            "{stream} changed in the middle of a batch, after {offset} events"
                        )));
                    }
                }
            }
            Ok(Appended {
                first_version: current + 1,
                version: current + batch.len() as u64,
                position,
                already_appended: false,
            })
        })
    }

    fn read_stream<'a>(
        &'a self,
        stream: &'a str,
        from: u64,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Recorded>, StoreError>> {
        Box::pin(async move {
            let handle = self.handle().await?;
            let subject = self.subject(stream);
            let mut events = Vec::new();
            let mut sequence = 1;
            while events.len() < limit {
                let message = match handle
                    .raw_message_builder()
                    .sequence(sequence)
                    .next_by_subject(subject.clone())
                    .send()
                    .await
                {
                    Ok(message) => message,
                    Err(error) if error.kind() == stream::RawMessageErrorKind::NoMessageFound => {
                        break;
                    }
                    Err(error) => return Err(backend(error)),
                };
                sequence = message.sequence + 1;
                let event = recorded(message.sequence, &message.headers, &message.payload)?;
                if event.version >= from {
                    events.push(event);
                }
            }
            Ok(events)
        })
    }

    fn read_all(
        &self,
        after: u64,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<Recorded>, StoreError>> {
        Box::pin(async move {
            let mut handle = self.handle().await?;
            let last = handle.info().await.map_err(backend)?.state.last_sequence;
            let mut events = Vec::new();
            let mut sequence = after + 1;
            while sequence <= last && events.len() < limit {
                let message = handle.get_raw_message(sequence).await.map_err(backend)?;
                events.push(recorded(
                    message.sequence,
                    &message.headers,
                    &message.payload,
                )?);
                sequence += 1;
            }
            Ok(events)
        })
    }

    fn version<'a>(&'a self, stream: &'a str) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move { Ok(self.last(stream).await?.0) })
    }

    fn live(&self) -> broadcast::Receiver<Recorded> {
        self.live.subscribe()
    }

    fn snapshot<'a>(
        &'a self,
        stream: &'a str,
    ) -> BoxFuture<'a, Result<Option<Snapshot>, StoreError>> {
        Box::pin(async move {
            let snapshots = self
                .context
                .get_stream(&self.snapshots)
                .await
                .map_err(backend)?;
            match snapshots
                .get_last_raw_message_by_subject(&format!("{}_snapshots.{stream}", self.root))
                .await
            {
                // A snapshot that no longer parses is as good as none.
                Ok(message) => Ok(serde_json::from_slice(&message.payload).ok()),
                Err(error) if error.kind() == stream::LastRawMessageErrorKind::NoMessageFound => {
                    Ok(None)
                }
                Err(error) => Err(backend(error)),
            }
        })
    }

    fn save_snapshot<'a>(
        &'a self,
        stream: &'a str,
        snapshot: Snapshot,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let bytes = serde_json::to_vec(&snapshot).map_err(backend)?;
            self.context
                .publish(format!("{}_snapshots.{stream}", self.root), bytes.into())
                .await
                .map_err(backend)?
                .await
                .map_err(backend)?;
            Ok(())
        })
    }
}
