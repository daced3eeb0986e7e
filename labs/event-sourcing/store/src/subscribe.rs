//! The driver of the core's `Subscription` machine against a store: it subscribes to the
//! store's live notifications first, then runs the machine, answering its reads from `$all`,
//! feeding it notifications (and `Lagged` when the channel overflowed), firing its checkpoint
//! timer, and sending what it delivers down a channel. It stops when the receiver is dropped.

use std::sync::Arc;

use event_sourcing_core::subscription::{Input, Output};
use event_sourcing_core::{Machine, Millis, Recorded, Subscription, SubscriptionConfig};
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

use crate::EventStore;

/// What a subscriber receives, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Delivery {
    /// The next event of `$all`.
    Event(Recorded),
    /// Caught up: what follows arrives live.
    Live {
        /// The last position delivered at the switch.
        at: u64,
    },
    /// Everything up to here is delivered: save it and subscribe from it after a restart.
    Checkpoint(u64),
    /// The store failed; the subscription has stopped.
    Failed(String),
}

// ANCHOR: subscribe
/// Subscribes to `$all` after `checkpoint` (0: from the start).
pub fn subscribe(
    store: Arc<dyn EventStore>,
    checkpoint: u64,
    config: SubscriptionConfig,
) -> mpsc::Receiver<Delivery> {
    let (deliveries, receiver) = mpsc::channel(config.page_size.max(16));
    let mut live = store.live();
    tokio::spawn(async move {
        let started = Instant::now();
        let now = || Millis(started.elapsed().as_millis() as u64);
        let mut machine = Subscription::new(checkpoint, config);
        loop {
            while let Some(output) = machine.poll_output() {
                let delivery = match output {
                    Output::Read { after, limit } => match store.read_all(after, limit).await {
                        Ok(page) => {
                            let _ = machine.handle_input(now(), Input::Page(page));
                            continue;
                        }
                        Err(error) => Delivery::Failed(error.to_string()),
                    },
                    Output::Deliver(event) => Delivery::Event(event),
                    Output::Live { at } => Delivery::Live { at },
                    Output::Checkpoint(at) => Delivery::Checkpoint(at),
                };
                let failed = matches!(delivery, Delivery::Failed(_));
                if deliveries.send(delivery).await.is_err() || failed {
                    return;
                }
            }
            let timer = machine
                .poll_timeout()
                .map(|at| started + std::time::Duration::from_millis(at.0));
            tokio::select! {
                notified = live.recv() => match notified {
                    Ok(event) => { let _ = machine.handle_input(now(), Input::Live(event)); }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let _ = machine.handle_input(now(), Input::Lagged);
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                () = async { match timer { Some(at) => tokio::time::sleep_until(at).await, None => std::future::pending().await } } => {
                    machine.handle_timeout(now());
                }
                () = deliveries.closed() => return,
            }
        }
    });
    receiver
}
// ANCHOR_END: subscribe
