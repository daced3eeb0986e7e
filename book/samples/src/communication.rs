//! Request-response and publish-subscribe, retold from the guide's interview question 2.
//!
//! A synchronous call makes the caller wait, so it needs a deadline: without one a slow service
//! holds the caller's resources hostage. An asynchronous publish returns at once and the work
//! happens later in a subscriber, which must then handle its own failures: retries with backoff,
//! and a dead-letter queue for messages that keep failing. The bus here is a tokio broadcast
//! channel (every subscriber sees every event, like a Kafka topic with one consumer group per
//! service), but unlike a topic it keeps nothing: an event published with no subscriber is lost,
//! and a subscriber that falls behind loses the oldest events. Both are reported, not hidden.

use std::future::Future;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

// ANCHOR: sync-call
/// A user as the user service returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// User id.
    pub id: u64,
    /// Display name.
    pub name: String,
}

/// Why a synchronous call failed: the caller learns it immediately.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The service did not answer within the deadline.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The service answered with an error.
    #[error("service error: {0}")]
    Failed(String),
}

/// The user service's API as the caller sees it: over REST this is
/// `reqwest::get("http://user-service/api/users/123")`, over gRPC a `tonic` client's
/// `get_user(GetUserRequest { user_id: 123 })`. Either way the caller waits for the answer.
pub trait UserApi {
    /// Fetches one user.
    fn get_user(&self, id: u64) -> impl Future<Output = Result<User, CallError>> + Send;
}

/// A request-response call with a deadline: the caller waits, but never forever.
pub async fn get_user_with_deadline(
    api: &impl UserApi,
    id: u64,
    deadline: Duration,
) -> Result<User, CallError> {
    tokio::time::timeout(deadline, api.get_user(id))
        .await
        .map_err(|_elapsed| CallError::Timeout(deadline))?
}
// ANCHOR_END: sync-call

// ANCHOR: publish
/// The event published on the `order-created` topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderCreated {
    /// The new order.
    pub order_id: String,
    /// Who placed it (the email goes to them).
    pub user_id: String,
    /// Order total.
    pub total: u64,
}

/// An event published while nobody was subscribed: it reached no one and is returned to the
/// publisher, which must keep it (an outbox) or accept that it is lost.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no subscriber received the event")]
pub struct NoSubscriber<E>(pub E);

/// A topic: publishers do not know who listens, subscribers do not know who published.
///
/// It is bounded, and when a subscriber falls `capacity` events behind, the oldest events are
/// overwritten for it: the publisher never waits (no backpressure), and the slow subscriber
/// loses events instead. A durable log (Kafka, JetStream) keeps them for it.
#[derive(Debug, Clone)]
pub struct Topic<E: Clone> {
    sender: broadcast::Sender<E>,
}

impl<E: Clone> Topic<E> {
    /// A topic that buffers up to `capacity` events for a slow subscriber.
    pub fn new(capacity: usize) -> Self {
        Self {
            sender: broadcast::channel(capacity).0,
        }
    }

    /// Fire and forget: returns as soon as the event is buffered, with the number of
    /// subscribers that will see it. With no subscriber the event goes nowhere: a broadcast
    /// channel keeps nothing for subscribers that come later, so the event is handed back.
    pub fn publish(&self, event: E) -> Result<usize, NoSubscriber<E>> {
        self.sender
            .send(event)
            .map_err(|broadcast::error::SendError(event)| NoSubscriber(event))
    }

    /// A new subscription that sees every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<E> {
        self.sender.subscribe()
    }
}
// ANCHOR_END: publish

// ANCHOR: subscribe
/// What happened to one event in a subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Handled after `attempts` tries.
    Handled {
        /// Tries it took (1 = first time).
        attempts: u32,
    },
    /// Still failing after every retry: parked in the dead-letter queue for a person to inspect,
    /// so one poison message does not block the events behind it.
    DeadLettered {
        /// The last error.
        last_error: String,
    },
}

/// Runs `handler` for one event, retrying with exponential backoff (100 ms, 200 ms, 400 ms …).
/// Handlers must be idempotent: a retry may repeat work whose success was not recorded.
pub async fn handle_with_retry<E, F, Fut>(event: &E, max_attempts: u32, mut handler: F) -> Delivery
where
    F: FnMut(&E) -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let mut backoff = Duration::from_millis(100);
    let mut attempts = 0;
    loop {
        attempts += 1;
        match handler(event).await {
            Ok(()) => return Delivery::Handled { attempts },
            Err(last_error) if attempts >= max_attempts => {
                return Delivery::DeadLettered { last_error };
            }
            Err(_) => {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
        }
    }
}

/// What the subscriber tells its operator, event by event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// One event and what became of it.
    Delivered {
        /// The order the event was about.
        order_id: String,
        /// Handled or dead-lettered.
        delivery: Delivery,
    },
    /// The subscriber fell behind and the topic overwrote `count` events before it read them:
    /// they are gone, and only a durable log could replay them.
    Lost {
        /// How many events this subscriber will never see.
        count: u64,
    },
}

/// The notification service's loop: for every `order-created` event, send the confirmation
/// email, and report what happened to each event on `reports`, lost events included.
pub async fn email_subscriber<F, Fut>(
    mut events: broadcast::Receiver<OrderCreated>,
    mut send_email: F,
    reports: tokio::sync::mpsc::Sender<Report>,
) where
    F: FnMut(&OrderCreated) -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    loop {
        let report = match events.recv().await {
            Ok(event) => Report::Delivered {
                delivery: handle_with_retry(&event, 3, &mut send_email).await,
                order_id: event.order_id,
            },
            // Fell behind: the oldest events were overwritten. Say so, and go on with the
            // oldest event still buffered (a Kafka consumer would re-read from its offset).
            Err(broadcast::error::RecvError::Lagged(count)) => Report::Lost { count },
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if reports.send(report).await.is_err() {
            return;
        }
    }
}
// ANCHOR_END: subscribe

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    struct SlowUsers(Duration);
    impl UserApi for SlowUsers {
        async fn get_user(&self, id: u64) -> Result<User, CallError> {
            tokio::time::sleep(self.0).await;
            Ok(User {
                id,
                name: "Alice".into(),
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn sync_call_waits_for_the_answer_within_the_deadline() {
        let user = get_user_with_deadline(
            &SlowUsers(Duration::from_millis(50)),
            123,
            Duration::from_secs(1),
        )
        .await;
        assert_eq!(user.map(|u| u.name), Ok("Alice".to_owned()));
    }

    #[tokio::test(start_paused = true)]
    async fn sync_call_gives_up_at_the_deadline() {
        let started = Instant::now();
        let result = get_user_with_deadline(
            &SlowUsers(Duration::from_secs(30)),
            123,
            Duration::from_secs(2),
        )
        .await;
        assert_eq!(result, Err(CallError::Timeout(Duration::from_secs(2))));
        assert_eq!(started.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn publisher_continues_immediately_and_email_is_sent_later() {
        let topic = Topic::new(16);
        let (report, mut reports) = tokio::sync::mpsc::channel(16);
        tokio::spawn(email_subscriber(
            topic.subscribe(),
            |_event: &OrderCreated| async {
                // Email sent after 5 seconds.
                tokio::time::sleep(Duration::from_secs(5)).await;
                Ok(())
            },
            report,
        ));

        let started = Instant::now();
        let listeners = topic.publish(OrderCreated {
            order_id: "123".into(),
            user_id: "456".into(),
            total: 100,
        });
        assert_eq!(listeners, Ok(1));
        assert_eq!(started.elapsed(), Duration::ZERO, "publish does not wait");

        assert_eq!(
            reports.recv().await,
            Some(Report::Delivered {
                order_id: "123".into(),
                delivery: Delivery::Handled { attempts: 1 }
            })
        );
        assert_eq!(started.elapsed(), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn failing_handler_is_retried_with_backoff_then_dead_lettered() {
        let started = Instant::now();
        let mut calls = 0;
        let delivery = handle_with_retry(&(), 3, |_| {
            calls += 1;
            async { Err::<(), _>("smtp down".to_owned()) }
        })
        .await;
        assert_eq!(
            delivery,
            Delivery::DeadLettered {
                last_error: "smtp down".into()
            }
        );
        assert_eq!(calls, 3);
        // Two waits between three attempts: 100 ms + 200 ms.
        assert_eq!(started.elapsed(), Duration::from_millis(300));

        let mut failures_left = 1;
        let recovered = handle_with_retry(&(), 3, |_| {
            let result = if failures_left > 0 {
                failures_left -= 1;
                Err("flaky".to_owned())
            } else {
                Ok(())
            };
            async move { result }
        })
        .await;
        assert_eq!(recovered, Delivery::Handled { attempts: 2 });
    }

    #[test]
    fn publishing_with_no_subscriber_hands_the_event_back() {
        let topic: Topic<u32> = Topic::new(4);
        assert_eq!(
            topic.publish(1),
            Err(NoSubscriber(1)),
            "an event nobody receives is lost, and the publisher must be told"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_lagging_subscriber_reports_the_events_it_lost_and_carries_on() {
        let topic = Topic::new(2);
        let events = topic.subscribe();
        for id in 1..=4 {
            let order = OrderCreated {
                order_id: id.to_string(),
                user_id: "456".into(),
                total: 100,
            };
            assert_eq!(topic.publish(order), Ok(1));
        }
        let (report, mut reports) = tokio::sync::mpsc::channel(16);
        tokio::spawn(email_subscriber(
            events,
            |_event: &OrderCreated| async { Ok(()) },
            report,
        ));
        let handled = |order_id: &str| Report::Delivered {
            order_id: order_id.into(),
            delivery: Delivery::Handled { attempts: 1 },
        };
        let expected = [Report::Lost { count: 2 }, handled("3"), handled("4")];
        for want in expected {
            assert_eq!(
                reports.recv().await,
                Some(want),
                "a capacity-2 topic keeps the newest two of four events; the subscriber \
                 must say it lost the oldest two and go on with the rest"
            );
        }
    }
}
