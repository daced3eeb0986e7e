//! The message bus of the choreographed saga: in-process by default, NATS JetStream when
//! `NATS_URL` is set.
//!
//! Both give the same contract to the services: publish a message with an id; each consumer
//! (one per service, by name) receives every message, at least once, and acknowledges it once
//! it is handled. Exactly-once *effects* come from the consumer's inbox table, not the bus.

use std::sync::Arc;

use futures::StreamExt;
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
}

/// A bus connection.
#[derive(Clone, Debug)]
pub enum Bus {
    /// Channels inside this process.
    InProcess(Arc<Mutex<Vec<mpsc::UnboundedSender<Message>>>>),
    /// A JetStream stream with one durable consumer per service.
    Nats {
        /// The JetStream context (boxed: it is large, and the enum is cloned per task).
        jetstream: Box<async_nats::jetstream::Context>,
        /// The stream's name (unique per run, so runs do not see each other's events).
        stream: String,
        /// The subject prefix (`saga-<run>`); events go to `<prefix>.<event>`.
        prefix: String,
    },
}

/// Messages for one consumer.
pub enum Subscription {
    /// From the in-process bus.
    InProcess(mpsc::UnboundedReceiver<Message>),
    /// From a JetStream pull consumer.
    Nats(Box<async_nats::jetstream::consumer::pull::Stream>),
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Subscription::InProcess(_) => "Subscription::InProcess",
            Subscription::Nats(_) => "Subscription::Nats",
        })
    }
}

/// A received message and how to acknowledge it.
#[derive(Debug)]
pub struct Delivery {
    /// The message.
    pub message: Message,
    nats: Option<async_nats::jetstream::Message>,
}

impl Delivery {
    /// Tells the bus the message is handled (JetStream stops redelivering it).
    pub async fn ack(self) {
        if let Some(message) = self.nats
            && let Err(error) = message.ack().await
        {
            tracing::warn!(%error, "ack failed; the message will be redelivered (the inbox makes that harmless)");
        }
    }
}

impl Bus {
    /// The in-process bus.
    pub fn in_process() -> Bus {
        Bus::InProcess(Arc::default())
    }

    /// Connects to NATS and creates a stream for this run.
    pub async fn nats(url: &str, run: &str) -> anyhow::Result<Bus> {
        let client = async_nats::connect(url).await?;
        let jetstream = async_nats::jetstream::new(client);
        let prefix = format!("saga-{run}");
        let stream = format!(
            "SAGA_{}",
            run.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
        );
        jetstream
            .get_or_create_stream(async_nats::jetstream::stream::Config {
                name: stream.clone(),
                subjects: vec![format!("{prefix}.>")],
                ..Default::default()
            })
            .await?;
        Ok(Bus::Nats {
            jetstream: Box::new(jetstream),
            stream,
            prefix,
        })
    }

    /// `"in-process"` or `"NATS JetStream"`, for the demo and the tests to say which.
    pub fn describe(&self) -> &'static str {
        match self {
            Bus::InProcess(_) => "in-process bus",
            Bus::Nats { .. } => "NATS JetStream",
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
            Bus::Nats {
                jetstream, prefix, ..
            } => {
                let mut headers = async_nats::HeaderMap::new();
                // JetStream drops a second publish with the same id (the relay may publish
                // twice if it crashes between publishing and marking the row published).
                headers.insert("Nats-Msg-Id", message.id.as_str());
                jetstream
                    .publish_with_headers(
                        format!("{prefix}.{}", message.event),
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
                subscribers.lock().push(sender);
                Ok(Subscription::InProcess(receiver))
            }
            Bus::Nats {
                jetstream,
                stream,
                prefix,
            } => {
                let stream = jetstream.get_stream(stream).await?;
                let consumer = stream
                    .get_or_create_consumer(
                        name,
                        async_nats::jetstream::consumer::pull::Config {
                            durable_name: Some(name.to_owned()),
                            filter_subject: format!("{prefix}.>"),
                            ..Default::default()
                        },
                    )
                    .await?;
                Ok(Subscription::Nats(Box::new(consumer.messages().await?)))
            }
        }
    }
}

impl Subscription {
    /// The next message, or `None` when the bus is gone.
    pub async fn next(&mut self) -> Option<Delivery> {
        match self {
            Subscription::InProcess(receiver) => receiver.recv().await.map(|message| Delivery {
                message,
                nats: None,
            }),
            Subscription::Nats(stream) => loop {
                let message = match stream.next().await? {
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
                let id = message
                    .headers
                    .as_ref()
                    .and_then(|headers| headers.get("Nats-Msg-Id"))
                    .map(|value| value.as_str().to_owned())
                    .unwrap_or_default();
                return Some(Delivery {
                    message: Message {
                        id,
                        event,
                        payload: message.payload.to_vec(),
                    },
                    nats: Some(message),
                });
            },
        }
    }
}
