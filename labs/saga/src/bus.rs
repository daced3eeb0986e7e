//! The message bus of the choreographed saga: in-process by default, NATS JetStream when
//! `NATS_URL` is set.
//!
//! Both give the same contract to the services: publish a message with an id; each consumer
//! (one per service, by name) receives every message, at least once, and acknowledges it once
//! its effect (or its dead letter) is durable. A message that could be neither applied nor
//! parked is handed back for redelivery, never acknowledged. Exactly-once *effects* come from
//! the consumer's inbox table, not the bus.
//!
//! On NATS, every run of the lab shares one stream, `SAGA_LAB`, with limits (a day's or
//! 100 000 messages' worth), and each *deployment* (one data directory) has its own subjects
//! (`saga-lab.<deployment>.<event>`) and durable consumers (`<deployment>-<service>`), so two
//! demos never see each other's events and a restarted service finds its consumer again.
//!
//! A message carries the trace context of the span that published it ([`Message::trace`]):
//! on NATS as its `traceparent`/`tracestate` headers ([`NatsInjector`], [`NatsExtractor`]),
//! on the in-process bus as it is.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::AckKind;
use futures::StreamExt;
use lab_telemetry::messages::TraceHeaders;
use opentelemetry::propagation::{Extractor, Injector};
use parking_lot::Mutex;
use tokio::sync::mpsc;

/// One event on the bus.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Unique per event (`o-1:PaymentReserved`): the inbox key and JetStream's dedup id.
    pub id: String,
    /// The event's name (`PaymentReserved`).
    pub event: String,
    /// The order line, as JSON.
    pub payload: Vec<u8>,
    /// The trace context of the span that published it (empty when tracing is off): NATS
    /// carries it as the message's `traceparent`/`tracestate` headers.
    pub trace: TraceHeaders,
}

// ANCHOR: nats_headers
/// Reads a NATS message's headers for a propagator (every value of a repeated header).
pub struct NatsExtractor<'a>(pub &'a async_nats::HeaderMap);

impl Extractor for NatsExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(async_nats::HeaderValue::as_str)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(name, _)| name.as_ref()).collect()
    }

    fn get_all(&self, key: &str) -> Option<Vec<&str>> {
        let values: Vec<&str> = self
            .0
            .get_all(key)
            .map(async_nats::HeaderValue::as_str)
            .collect();
        (!values.is_empty()).then_some(values)
    }
}

/// Writes into a NATS message's headers for a propagator.
pub struct NatsInjector<'a>(pub &'a mut async_nats::HeaderMap);

impl Injector for NatsInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key, value);
    }
}

/// Copies `trace` into a message's headers: what was stored, one value per header.
fn write_trace(trace: &TraceHeaders, headers: &mut async_nats::HeaderMap) {
    let mut injector = NatsInjector(headers);
    for (key, value) in [
        ("traceparent", trace.traceparent()),
        ("tracestate", trace.tracestate()),
    ] {
        if let Some(value) = value {
            injector.set(key, value.to_owned());
        }
    }
}

/// A received message's trace headers, every value as it came (two `traceparent` headers
/// stay two, and restart the trace).
fn read_trace(headers: Option<&async_nats::HeaderMap>) -> TraceHeaders {
    let Some(headers) = headers else {
        return TraceHeaders::default();
    };
    let extractor = NatsExtractor(headers);
    let all = |key| {
        extractor
            .get_all(key)
            .unwrap_or_default()
            .into_iter()
            .map(str::to_owned)
            .collect()
    };
    TraceHeaders {
        traceparent: all("traceparent"),
        tracestate: all("tracestate"),
    }
}
// ANCHOR_END: nats_headers

/// Where and how the lab's events are kept on a NATS server.
#[derive(Clone, Debug)]
pub struct NatsSettings {
    /// The server (`nats://127.0.0.1:4222`).
    pub url: String,
    /// The stream's name, the same for every run.
    pub stream: String,
    /// The first token of every subject (`saga-lab`).
    pub subject_root: String,
    /// Messages older than this are dropped from the stream.
    pub max_age: Duration,
    /// The stream keeps at most this many messages (the oldest go first).
    pub max_messages: i64,
    /// How long JetStream waits for an acknowledgement before it redelivers a message, for
    /// consumers created by this run (a restarted service waits this long for the messages
    /// its previous run received and never acknowledged).
    pub ack_wait: Duration,
    /// A durable consumer unused for this long is removed by the server.
    pub inactive_threshold: Duration,
}

impl NatsSettings {
    /// The lab's stream on the server at `url`: `SAGA_LAB`, a day or 100 000 messages.
    pub fn lab(url: impl Into<String>) -> NatsSettings {
        NatsSettings {
            url: url.into(),
            stream: "SAGA_LAB".to_owned(),
            subject_root: "saga-lab".to_owned(),
            max_age: Duration::from_secs(24 * 3600),
            max_messages: 100_000,
            ack_wait: Duration::from_secs(30),
            inactive_threshold: Duration::from_secs(24 * 3600),
        }
    }
}

/// A bus connection.
#[derive(Clone, Debug)]
pub enum Bus {
    /// Channels inside this process.
    InProcess(Arc<Mutex<Vec<mpsc::UnboundedSender<Message>>>>),
    /// A JetStream stream with one durable consumer per service and deployment.
    Nats(Box<NatsBus>),
}

/// The NATS side of a [`Bus`] (boxed in the enum: it is large, and cloned per task).
#[derive(Clone, Debug)]
pub struct NatsBus {
    jetstream: async_nats::jetstream::Context,
    settings: NatsSettings,
    deployment: String,
}

impl NatsBus {
    /// `saga-lab.<deployment>`: every event of this deployment goes to `<prefix>.<event>`.
    fn prefix(&self) -> String {
        format!("{}.{}", self.settings.subject_root, self.deployment)
    }
}

/// Messages for one consumer.
pub enum Subscription {
    /// From the in-process bus (and a way to put a message back in the queue).
    InProcess {
        /// Messages published on the bus.
        receiver: mpsc::UnboundedReceiver<Message>,
        /// This consumer's own queue, for redeliveries.
        sender: mpsc::UnboundedSender<Message>,
    },
    /// From a JetStream pull consumer.
    Nats {
        /// The consumer's messages.
        messages: Box<async_nats::jetstream::consumer::pull::Stream>,
        /// Stripped from message ids (`<deployment>:<id>` on the wire).
        deployment: String,
        /// Messages a previous run received and never acknowledged, when subscribing.
        unacknowledged: usize,
        /// The consumer's ack wait.
        ack_wait: Duration,
    },
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Subscription::InProcess { .. } => "Subscription::InProcess",
            Subscription::Nats { .. } => "Subscription::Nats",
        })
    }
}

/// A received message and how to acknowledge it (or hand it back).
#[derive(Debug)]
pub struct Delivery {
    /// What was received; acknowledge it only once its effect is durable.
    pub message: Message,
    source: Source,
}

#[derive(Debug)]
enum Source {
    InProcess(mpsc::UnboundedSender<Message>),
    Nats(Box<async_nats::jetstream::Message>),
}

impl Delivery {
    /// Tells the bus the message is handled (JetStream stops redelivering it). Call it only
    /// once the message's effect, or its dead letter, is committed.
    pub async fn ack(self) {
        if let Source::Nats(message) = self.source
            && let Err(error) = message.ack().await
        {
            tracing::warn!(%error, "ack failed; the message will be redelivered (the inbox makes that harmless)");
        }
    }

    /// Tells the bus the message is still being worked on (JetStream restarts its ack wait),
    /// so a long run of retries is not redelivered to this consumer meanwhile.
    pub async fn in_progress(&self) {
        if let Source::Nats(message) = &self.source
            && let Err(error) = message.ack_with(AckKind::Progress).await
        {
            tracing::debug!(%error, "progress ack failed");
        }
    }

    /// Hands the message back, unhandled: the bus delivers it again after `delay`.
    pub async fn redeliver(self, delay: Duration) {
        match self.source {
            Source::InProcess(queue) => {
                let message = self.message;
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    // The consumer may be gone (the process is stopping): nothing to do then.
                    let _ = queue.send(message);
                });
            }
            Source::Nats(message) => {
                if let Err(error) = message.ack_with(AckKind::Nak(Some(delay))).await {
                    // No answer: JetStream redelivers it anyway once its ack wait is over.
                    tracing::warn!(%error, "nak failed; the message comes back after the ack wait");
                }
            }
        }
    }
}

// ANCHOR: message_id
/// The inbox id of a message received from JetStream: its `Nats-Msg-Id` (without this
/// deployment's prefix) or, for a message published without one, its stream sequence.
/// Distinct messages never share an id, and a redelivery keeps its id.
pub fn message_id(header: Option<&str>, deployment: &str, stream_sequence: u64) -> String {
    match header.map(str::trim).filter(|id| !id.is_empty()) {
        Some(id) => id
            .strip_prefix(deployment)
            .and_then(|rest| rest.strip_prefix(':'))
            .unwrap_or(id)
            .to_owned(),
        None => format!("stream-sequence:{stream_sequence}"),
    }
}
// ANCHOR_END: message_id

/// A name NATS accepts in a consumer name and a subject token: letters, digits, `-`, `_`.
pub fn token(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl Bus {
    /// The in-process bus.
    pub fn in_process() -> Bus {
        Bus::InProcess(Arc::default())
    }

    /// Connects to NATS and makes sure the lab's stream exists. `deployment` names this data
    /// directory's subjects and consumers (see [`token`]).
    pub async fn nats(settings: &NatsSettings, deployment: &str) -> anyhow::Result<Bus> {
        let url = &settings.url;
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(5))
            .connect(url.as_str())
            .await
            .with_context(|| {
                format!(
                    "cannot connect to NATS at {url} (from NATS_URL). Start a server with \
                     JetStream enabled: `nats-server -js` (it listens on nats://127.0.0.1:4222), \
                     or unset NATS_URL to use the in-process bus"
                )
            })?;
        let jetstream = async_nats::jetstream::new(client);
        let subject_root = &settings.subject_root;
        jetstream
            .get_or_create_stream(async_nats::jetstream::stream::Config {
                name: settings.stream.clone(),
                subjects: vec![format!("{subject_root}.>")],
                max_age: settings.max_age,
                max_messages: settings.max_messages,
                ..Default::default()
            })
            .await
            .with_context(|| {
                format!(
                    "the NATS server at {url} answered, but cannot keep the stream {}: is \
                     JetStream enabled? Start the server with `nats-server -js`",
                    settings.stream
                )
            })?;
        Ok(Bus::Nats(Box::new(NatsBus {
            jetstream,
            settings: settings.clone(),
            deployment: token(deployment),
        })))
    }

    /// `"in-process"` or `"NATS JetStream"`, for the demo and the tests to say which.
    pub fn describe(&self) -> &'static str {
        match self {
            Bus::InProcess(_) => "in-process bus",
            Bus::Nats(_) => "NATS JetStream",
        }
    }

    /// `messaging.system` for the spans: `nats` or `in-process`.
    pub fn system(&self) -> &'static str {
        match self {
            Bus::InProcess(_) => "in-process",
            Bus::Nats(_) => "nats",
        }
    }

    /// Whether messages survive the process (JetStream) or die with it (in-process).
    pub fn is_durable(&self) -> bool {
        matches!(self, Bus::Nats(_))
    }

    /// The subject an event of this deployment is published on (NATS only).
    pub fn subject(&self, event: &str) -> Option<String> {
        match self {
            Bus::InProcess(_) => None,
            Bus::Nats(nats) => Some(format!("{}.{event}", nats.prefix())),
        }
    }

    // ANCHOR: publish
    /// Publishes one message; returns once the bus has it (JetStream: stored and acked).
    pub async fn publish(&self, message: Message) -> anyhow::Result<()> {
        match self {
            Bus::InProcess(subscribers) => {
                subscribers
                    .lock()
                    .retain(|subscriber| subscriber.send(message.clone()).is_ok());
                Ok(())
            }
            Bus::Nats(nats) => {
                let mut headers = async_nats::HeaderMap::new();
                // JetStream drops a second publish with the same id (the relay may publish
                // twice if it crashes between publishing and marking the row published).
                // The deployment keeps two demos' `order-1:OrderCreated` apart.
                let id = format!("{}:{}", nats.deployment, message.id);
                headers.insert("Nats-Msg-Id", id.as_str());
                write_trace(&message.trace, &mut headers);
                nats.jetstream
                    .publish_with_headers(
                        format!("{}.{}", nats.prefix(), message.event),
                        headers,
                        message.payload.into(),
                    )
                    .await?
                    .await?;
                Ok(())
            }
        }
    }
    // ANCHOR_END: publish

    /// Subscribes the consumer `name` to every event.
    pub async fn subscribe(&self, name: &str) -> anyhow::Result<Subscription> {
        match self {
            Bus::InProcess(subscribers) => {
                let (sender, receiver) = mpsc::unbounded_channel();
                subscribers.lock().push(sender.clone());
                Ok(Subscription::InProcess { receiver, sender })
            }
            Bus::Nats(nats) => {
                let stream = nats.jetstream.get_stream(&nats.settings.stream).await?;
                let durable = format!("{}-{}", nats.deployment, token(name));
                let consumer = stream
                    .get_or_create_consumer(
                        &durable,
                        async_nats::jetstream::consumer::pull::Config {
                            durable_name: Some(durable.clone()),
                            filter_subject: format!("{}.>", nats.prefix()),
                            ack_wait: nats.settings.ack_wait,
                            inactive_threshold: nats.settings.inactive_threshold,
                            ..Default::default()
                        },
                    )
                    .await?;
                let info = consumer.cached_info();
                let unacknowledged = info.num_ack_pending;
                let ack_wait = info.config.ack_wait;
                Ok(Subscription::Nats {
                    messages: Box::new(consumer.messages().await?),
                    deployment: nats.deployment.clone(),
                    unacknowledged,
                    ack_wait,
                })
            }
        }
    }
}

impl Subscription {
    /// `messaging.system` for the spans: `nats` or `in-process`.
    pub fn system(&self) -> &'static str {
        match self {
            Subscription::InProcess { .. } => "in-process",
            Subscription::Nats { .. } => "nats",
        }
    }

    /// Messages a previous run of this consumer received and never acknowledged, and how
    /// long JetStream waits before it redelivers them (`None` on the in-process bus).
    pub fn awaiting_redelivery(&self) -> Option<(usize, Duration)> {
        match self {
            Subscription::InProcess { .. } => None,
            Subscription::Nats {
                unacknowledged,
                ack_wait,
                ..
            } => (*unacknowledged > 0).then_some((*unacknowledged, *ack_wait)),
        }
    }

    /// The next message, or `None` when the bus is gone.
    pub async fn next(&mut self) -> Option<Delivery> {
        match self {
            Subscription::InProcess { receiver, sender } => {
                receiver.recv().await.map(|message| Delivery {
                    message,
                    source: Source::InProcess(sender.clone()),
                })
            }
            Subscription::Nats {
                messages,
                deployment,
                ..
            } => loop {
                let message = match messages.next().await? {
                    Ok(message) => message,
                    Err(error) => {
                        tracing::warn!(%error, "NATS delivery error");
                        continue;
                    }
                };
                let event = message
                    .subject
                    .rsplit('.')
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                let sequence = match message.info() {
                    Ok(info) => info.stream_sequence,
                    Err(error) => {
                        // Not a JetStream delivery: it cannot be acknowledged or told apart.
                        tracing::error!(%error, subject = %message.subject, "a message without JetStream metadata; skipped");
                        continue;
                    }
                };
                let header = message
                    .headers
                    .as_ref()
                    .and_then(|headers| headers.get("Nats-Msg-Id"))
                    .map(|value| value.as_str().to_owned());
                let id = message_id(header.as_deref(), deployment, sequence);
                let trace = read_trace(message.headers.as_ref());
                return Some(Delivery {
                    message: Message {
                        id,
                        event,
                        payload: message.payload.to_vec(),
                        trace,
                    },
                    source: Source::Nats(Box::new(message)),
                });
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_headers_go_into_a_nats_message_and_come_back_as_they_were() {
        let trace = TraceHeaders::stored(
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned()),
            Some("lab=1".to_owned()),
        );
        let mut headers = async_nats::HeaderMap::new();
        write_trace(&trace, &mut headers);
        assert_eq!(read_trace(Some(&headers)), trace);
        assert_eq!(read_trace(None), TraceHeaders::default());

        headers.append(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b8-01",
        );
        let twice = read_trace(Some(&headers));
        assert_eq!(
            twice.traceparent.len(),
            2,
            "a repeated header is kept twice"
        );
        assert!(twice.incoming().parent.is_none(), "and restarts the trace");
    }

    #[test]
    fn a_message_without_an_id_is_known_by_its_stream_sequence() {
        let first = message_id(None, "d1", 7);
        let second = message_id(None, "d1", 8);
        assert_ne!(
            first, second,
            "two messages without an id stay two messages"
        );
        assert_ne!(first, "");
        assert_eq!(
            first,
            message_id(None, "d1", 7),
            "a redelivery keeps its id"
        );
        assert_eq!(message_id(Some(""), "d1", 9), message_id(None, "d1", 9));
        assert_eq!(message_id(Some("  "), "d1", 9), message_id(None, "d1", 9));
    }

    #[test]
    fn a_message_id_loses_its_deployment_prefix_only() {
        assert_eq!(
            message_id(Some("d1:o-1:OrderCreated"), "d1", 1),
            "o-1:OrderCreated"
        );
        assert_eq!(
            message_id(Some("o-1:OrderCreated"), "d1", 1),
            "o-1:OrderCreated"
        );
        assert_eq!(message_id(Some("d10:x"), "d1", 1), "d10:x");
    }
}
