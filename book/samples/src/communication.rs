//! Request-response and publish-subscribe, retold from the guide's interview question 2.
//!
//! A synchronous call makes the caller wait, so it needs a deadline: without one a slow service
//! holds the caller's resources hostage. An asynchronous publish returns at once and the work
//! happens later in a subscriber, which must then handle its own failures: retries with backoff,
//! and a dead-letter queue for messages that keep failing. The bus here is a tokio broadcast
//! channel (every subscriber sees every event, like a Kafka topic with one consumer group per
//! service); the lab replaces it with NATS JetStream.

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

/// A topic: publishers do not know who listens, subscribers do not know who published.
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
    /// subscribers that will see it (zero is not an error: nobody has subscribed yet).
    pub fn publish(&self, event: E) -> usize {
        self.sender.send(event).unwrap_or(0)
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

/// The notification service's loop: for every `order-created` event, send the confirmation
/// email, and report what happened to each event on `deliveries`.
pub async fn email_subscriber<F, Fut>(
    mut events: broadcast::Receiver<OrderCreated>,
    mut send_email: F,
    deliveries: tokio::sync::mpsc::Sender<(String, Delivery)>,
) where
    F: FnMut(&OrderCreated) -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    // `recv` fails when the topic is closed (done) or when this subscriber fell so far behind
    // that events were dropped; a real consumer would then re-read from its stored offset.
    while let Ok(event) = events.recv().await {
        let delivery = handle_with_retry(&event, 3, &mut send_email).await;
        if deliveries
            .send((event.order_id.clone(), delivery))
            .await
            .is_err()
        {
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
        assert_eq!(listeners, 1);
        assert_eq!(started.elapsed(), Duration::ZERO, "publish does not wait");

        let (order_id, delivery) = reports.recv().await.expect("subscriber reports");
        assert_eq!(order_id, "123");
        assert_eq!(delivery, Delivery::Handled { attempts: 1 });
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
    fn publishing_without_subscribers_is_not_an_error() {
        let topic: Topic<u32> = Topic::new(4);
        assert_eq!(topic.publish(1), 0);
    }
}
