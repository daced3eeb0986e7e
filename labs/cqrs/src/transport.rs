//! How events travel from the store to the projections: an in-process bus by default, NATS
//! JetStream when `NATS_URL` is set. Each message is one `$all` event with the wall-clock time
//! it was published (for the lag in milliseconds). JetStream keeps a deployment's events in its
//! own stream, deduplicated by position (`Nats-Msg-Id`), read by one durable pull consumer per
//! projection; a message is acknowledged only after its effect and checkpoint are committed.
//! Over JetStream the command's trace context travels as the message's `traceparent` and
//! `tracestate` headers, where any NATS-aware tracer looks for it; in process, in the envelope.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use event_sourcing_core::Recorded;
use futures::{FutureExt, StreamExt};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// One message: an event of `$all` and when it was published.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// The event, with its `$all` position.
    pub recorded: Recorded,
    /// Wall-clock ms when the publisher sent it.
    pub published_ms: u64,
    /// The `traceparent` of the command that wrote the event, when it was traced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// Its `tracestate`, when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracestate: Option<String>,
}

/// How long JetStream waits for an acknowledgement before it redelivers.
pub const ACK_WAIT: Duration = Duration::from_secs(2);

/// Where messages go.
// One transport per process, cloned a few times at start: the size of the NATS variant is no cost.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub enum Transport {
    /// Channels to the projections of this process (bounded: the publisher waits for them).
    InProcess(Arc<Mutex<Vec<mpsc::Sender<Envelope>>>>),
    /// A JetStream stream of this deployment.
    Nats {
        /// The JetStream context.
        jetstream: async_nats::jetstream::Context,
        /// The stream's name.
        stream: String,
        /// The one subject it holds.
        subject: String,
    },
}

/// A received message's acknowledgement, sent once its effect is durable.
pub enum Ack {
    /// The in-process bus needs none.
    None,
    /// A JetStream message to acknowledge.
    Nats(Box<async_nats::jetstream::Message>),
}

impl Ack {
    /// Acknowledges: JetStream will not deliver the message again.
    pub async fn send(self) {
        if let Ack::Nats(message) = self
            && let Err(error) = message.ack().await
        {
            tracing::warn!(%error, "ack failed: the message comes back, and the checkpoint absorbs it");
        }
    }
}

/// A projection's inbox.
pub enum Inbox {
    /// From the in-process bus.
    InProcess(mpsc::Receiver<Envelope>),
    /// From a JetStream durable pull consumer.
    Nats(Box<async_nats::jetstream::consumer::pull::Stream>),
}

/// A name usable in NATS stream, subject and consumer names.
pub fn token(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

impl Transport {
    /// The in-process bus.
    pub fn in_process() -> Transport {
        Transport::InProcess(Arc::default())
    }

    /// JetStream at `url`, the stream of `deployment` (a data directory's name, so two runs
    /// sharing a server keep apart).
    pub async fn nats(url: &str, deployment: &str) -> anyhow::Result<Transport> {
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(5))
            .connect(url)
            .await
            .with_context(|| {
                format!("cannot connect to NATS at {url} (from NATS_URL): start `nats-server -js`, or unset NATS_URL for the in-process bus")
            })?;
        let jetstream = async_nats::jetstream::new(client);
        let stream = format!("CQRS_{}", token(deployment));
        let subject = format!("cqrs.{}.all", token(deployment));
        jetstream
            .get_or_create_stream(async_nats::jetstream::stream::Config {
                name: stream.clone(),
                subjects: vec![subject.clone()],
                duplicate_window: Duration::from_secs(120),
                ..Default::default()
            })
            .await
            .with_context(|| format!("NATS at {url} cannot keep the stream {stream}: is JetStream on (`nats-server -js`)?"))?;
        Ok(Transport::Nats {
            jetstream,
            stream,
            subject,
        })
    }

    /// `in-process bus` or `NATS JetStream`.
    pub fn describe(&self) -> &'static str {
        match self {
            Transport::InProcess(_) => "in-process bus",
            Transport::Nats { .. } => "NATS JetStream",
        }
    }

    /// Publishes one message; returns once the transport holds it (JetStream: stored).
    pub async fn publish(&self, envelope: &Envelope) -> anyhow::Result<()> {
        match self {
            Transport::InProcess(subscribers) => {
                let senders: Vec<_> = subscribers.lock().clone();
                for sender in senders {
                    // A projection that stopped has nothing to lose: it catches up on restart.
                    let _ = sender.send(envelope.clone()).await;
                }
                Ok(())
            }
            Transport::Nats {
                jetstream, subject, ..
            } => {
                let mut headers = async_nats::HeaderMap::new();
                let id = envelope.recorded.position.to_string();
                headers.insert("Nats-Msg-Id", id.as_str());
                if let Some(traceparent) = &envelope.traceparent {
                    headers.insert(TRACEPARENT, traceparent.as_str());
                }
                if let Some(tracestate) = &envelope.tracestate {
                    headers.insert(TRACESTATE, tracestate.as_str());
                }
                let payload = serde_json::to_vec(&Envelope {
                    traceparent: None,
                    tracestate: None,
                    ..envelope.clone()
                })?;
                jetstream
                    .publish_with_headers(subject.clone(), headers, payload.into())
                    .await?
                    .await?;
                Ok(())
            }
        }
    }

    /// The inbox of the projection `name`.
    pub async fn subscribe(&self, name: &str) -> anyhow::Result<Inbox> {
        match self {
            Transport::InProcess(subscribers) => {
                let (sender, receiver) = mpsc::channel(1_024);
                subscribers.lock().push(sender);
                Ok(Inbox::InProcess(receiver))
            }
            Transport::Nats {
                jetstream, stream, ..
            } => {
                let stream = jetstream.get_stream(stream).await?;
                let durable = format!("cqrs_{}", token(name));
                let consumer = stream
                    .get_or_create_consumer(
                        &durable,
                        async_nats::jetstream::consumer::pull::Config {
                            durable_name: Some(durable.clone()),
                            ack_wait: ACK_WAIT,
                            max_ack_pending: 4_096,
                            ..Default::default()
                        },
                    )
                    .await?;
                Ok(Inbox::Nats(Box::new(consumer.messages().await?)))
            }
        }
    }
}

impl Inbox {
    /// The next message and its acknowledgement; `None` when the transport is gone. A
    /// JetStream message that does not decode is acknowledged and skipped (it is not one of ours).
    pub async fn next(&mut self) -> Option<(Envelope, Ack)> {
        match self {
            Inbox::InProcess(receiver) => receiver.recv().await.map(|e| (e, Ack::None)),
            Inbox::Nats(messages) => loop {
                let message = match messages.next().await? {
                    Ok(message) => message,
                    Err(error) => {
                        tracing::warn!(%error, "NATS delivery error");
                        continue;
                    }
                };
                match decode(&message) {
                    Ok(envelope) => return Some((envelope, Ack::Nats(Box::new(message)))),
                    Err(error) => {
                        tracing::error!(%error, "a message that is no envelope; acknowledged and skipped");
                        let _ = message.ack().await;
                    }
                }
            },
        }
    }

    /// Takes a message that is already waiting, without waiting: the rest of a batch.
    pub fn try_next(&mut self) -> Option<(Envelope, Ack)> {
        match self {
            Inbox::InProcess(receiver) => receiver.try_recv().ok().map(|e| (e, Ack::None)),
            Inbox::Nats(messages) => {
                // Polling a stream once and dropping the future loses nothing.
                let message = messages.next().now_or_never()??.ok()?;
                match decode(&message) {
                    Ok(envelope) => Some((envelope, Ack::Nats(Box::new(message)))),
                    Err(error) => {
                        tracing::error!(%error, "a message that is no envelope; it will come back and be skipped then");
                        None
                    }
                }
            }
        }
    }
}

/// The message header that carries the command's `traceparent` over JetStream.
const TRACEPARENT: &str = "traceparent";
/// The message header that carries its `tracestate`.
const TRACESTATE: &str = "tracestate";

/// A JetStream message's envelope, its trace context from the message's headers (every value
/// of a repeated header joined, so the strict rules see a duplicated `traceparent` and refuse it).
fn decode(message: &async_nats::jetstream::Message) -> serde_json::Result<Envelope> {
    let mut envelope: Envelope = serde_json::from_slice(&message.payload)?;
    if let Some(headers) = &message.headers {
        let all = |name: &str| {
            headers
                .get_all(name)
                .map(|value| value.as_str().to_owned())
                .reduce(|a, b| format!("{a},{b}"))
        };
        envelope.traceparent = all(TRACEPARENT).or(envelope.traceparent);
        envelope.tracestate = all(TRACESTATE).or(envelope.tracestate);
    }
    Ok(envelope)
}
