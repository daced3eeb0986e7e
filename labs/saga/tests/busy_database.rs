//! A service's SQLite file held by another writer: the work waits for the lock, and the
//! choreography never acknowledges a message it could not apply or park.
//!
//! "Another writer" is a second connection to the same file holding `BEGIN IMMEDIATE`, as the
//! `sqlite3` shell or a backup job would. The choreography tests run on tokio's paused clock
//! with the in-process bus, so the consumer's backoff over minutes takes no real time; each
//! attempt's busy wait is made short (a millisecond of real time) on the service's connection.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use lab_saga::bus::Bus;
use lab_saga::choreography::{self, Choreography};
use lab_saga::system::{Options, Place, Seed, System, fresh_dir, order_line};
use saga_core::{CommandKind, OrderStatus};

/// Enough 5 ms checks (of the paused clock) for any saga that is going to end.
const MAX_CHECKS: u32 = 100_000;

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("saga-busy-{name}-{}", std::process::id()));
    fresh_dir(&dir).unwrap();
    dir
}

/// A second connection to `service`'s file that holds the write lock until dropped or
/// [`Holder::release`]d.
struct Holder(rusqlite::Connection);

impl Holder {
    fn take(dir: &Path, service: &str) -> Holder {
        let connection = rusqlite::Connection::open(dir.join(format!("{service}.db"))).unwrap();
        connection.execute_batch("BEGIN IMMEDIATE").unwrap();
        Holder(connection)
    }

    fn release(self) {
        self.0.execute_batch("COMMIT").unwrap();
    }
}

/// Where the busy handler below reports that a write is waiting for the lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Progress {
    Started,
    Waiting,
    Done,
}

static PROGRESS: (Mutex<Progress>, Condvar) = (Mutex::new(Progress::Started), Condvar::new());

fn report(progress: Progress) {
    *PROGRESS.0.lock().unwrap() = progress;
    PROGRESS.1.notify_all();
}

/// SQLite calls this while the lock is taken: say so, wait a millisecond, and keep waiting
/// (for at most about a minute).
fn busy_handler(calls: i32) -> bool {
    report(Progress::Waiting);
    std::thread::sleep(Duration::from_millis(1));
    calls < 60_000
}

#[test]
fn a_write_waits_for_another_writer_instead_of_failing_at_once() {
    let dir = scratch("waits");
    let system = System::start(
        &Place::Dir(dir.clone()),
        Some(&Seed::default()),
        Options::default(),
    )
    .unwrap();
    system
        .payment
        .db()
        .lock()
        .busy_handler(Some(busy_handler))
        .unwrap();
    let holder = Holder::take(&dir, "payment");
    let payment = std::sync::Arc::clone(&system.payment);
    let worker = std::thread::spawn(move || {
        let reply = payment.execute(
            CommandKind::Action,
            "o-1:reserve_payment",
            &order_line("o-1", 1),
        );
        report(Progress::Done);
        reply
    });
    // Wait until the write is either waiting for the lock or already over.
    let mut progress = PROGRESS.0.lock().unwrap();
    while *progress == Progress::Started {
        progress = PROGRESS.1.wait(progress).unwrap();
    }
    drop(progress);
    holder.release();
    let reply = worker.join().unwrap();
    assert!(
        reply.is_success(),
        "the write must wait for the other writer, not fail: {reply:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn choreographed(dir: &Path) -> System {
    let system = System::start(
        &Place::Dir(dir.to_path_buf()),
        Some(&Seed::default()),
        Options {
            extra_schema: choreography::SCHEMA.to_owned(),
            ..Options::default()
        },
    )
    .unwrap();
    for db in [
        system.order.db(),
        system.payment.db(),
        system.inventory.db(),
        system.shipping.db(),
    ] {
        db.lock().busy_timeout(Duration::from_millis(1)).unwrap();
    }
    system
}

#[tokio::test(start_paused = true)]
async fn a_message_whose_database_stays_busy_is_redelivered_and_applied_not_dropped() {
    let dir = scratch("redelivered");
    let system = choreographed(&dir);
    let choreography = Choreography::start(&system, Bus::in_process(), None)
        .await
        .unwrap();
    let holder = Holder::take(&dir, "payment");
    choreography.place(&order_line("c-1", 1)).unwrap();
    // Ten minutes of the paused clock: far past every retry and every backoff, with the
    // payment database busy all along (the dead letter cannot be written either).
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(
        system.balances("c-1").unwrap().order_status,
        OrderStatus::Pending,
        "nothing can happen while payment's database is held"
    );
    holder.release();
    assert_eq!(
        choreography.settle("c-1", MAX_CHECKS).await,
        OrderStatus::Approved,
        "once the lock is released, the message comes back and the saga ends"
    );
    let balances = system.balances("c-1").unwrap();
    assert!(balances.is_consistent(), "{balances:?}");
    assert!(choreography.dead_letters().is_empty());
    drop(choreography);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(start_paused = true)]
async fn after_a_crash_the_in_process_choreography_publishes_again_and_the_saga_ends() {
    let dir = scratch("crash");
    {
        let system = choreographed(&dir);
        let choreography = Choreography::start(&system, Bus::in_process(), None)
            .await
            .unwrap();
        // Shipping's file is held: StockReserved is published, taken off the bus by
        // shipping's consumer, and cannot be applied.
        let holder = Holder::take(&dir, "shipping");
        choreography.place(&order_line("c-2", 1)).unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(system.balances("c-2").unwrap().stock_reserved, 1);
        // The crash: every task stops where it is, the in-process bus loses what it carried.
        drop(choreography);
        holder.release();
    }
    let system = choreographed(&dir);
    let choreography = Choreography::start(&system, Bus::in_process(), None)
        .await
        .unwrap();
    assert_eq!(
        choreography.settle("c-2", MAX_CHECKS).await,
        OrderStatus::Approved,
        "the restarted services carry the saga on"
    );
    assert!(system.balances("c-2").unwrap().is_consistent());
    drop(choreography);
    let _ = std::fs::remove_dir_all(&dir);
}
