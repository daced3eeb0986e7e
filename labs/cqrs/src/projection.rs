//! A projection at work: the core's `Projector` fed from an inbox, its view kept in the view's
//! own SQLite file. Each batch of deliveries is applied, then the rows it changed and the new
//! checkpoint are committed in ONE transaction, and only then are the messages acknowledged,
//! so a crash anywhere leaves every event counted exactly once: before the commit nothing
//! is written and the messages come back; after it, they come back and the checkpoint skips
//! them. A rebuild replays `$all` from zero into a new generation while the old one serves.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use cqrs_core::projector::{Input, Output};
use cqrs_core::rebuild::{Event as RebuildEvent, Phase, RebuildError};
use cqrs_core::{Fact, Machine, Millis, Positioned, Projector, RowKey, View};
use event_sourcing_store::EventStore;
use rusqlite::Connection;
use serde::Serialize;
use tokio::sync::watch;
use tokio::time::Instant;

use lab_telemetry::messages::TraceHeaders;

use crate::telemetry;
use crate::transport::{Ack, Envelope, Inbox};
use crate::viewdb::{self, Checkpoint, wall_ms};

/// Events a rebuild replays per transaction.
pub const REBUILD_PAGE: usize = 128;

/// How a projection runs.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Deliveries applied per transaction at most (1: one transaction per event).
    pub batch: usize,
    /// How long a missing position is waited for; longer than the transport's redelivery.
    pub gap_wait: Millis,
    /// Test hook: after committing a checkpoint at or past this position, print a line and
    /// stop before acknowledging (the crash test kills the process there).
    pub halt_after_commit: Option<u64>,
    /// The projections' tracer: each event applied in a span under its command's context.
    pub telemetry: Option<Arc<lab_telemetry::Telemetry>>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            batch: 256,
            gap_wait: Millis(5_000),
            halt_after_commit: None,
            telemetry: None,
        }
    }
}

/// What the admin API shows of a rebuild.
#[derive(Clone, Debug, Serialize)]
pub struct RebuildStatus {
    /// The projection's name.
    pub projection: &'static str,
    /// Where its rebuild is.
    #[serde(flatten)]
    pub phase: Phase,
    /// Whether the last finished rebuild came out equal to the view it replaced.
    pub last_equal_to_live: Option<bool>,
}

/// The running projection, behind a lock the rebuild takes to switch.
pub struct Live<V: View> {
    projector: Projector<V>,
    generation: u32,
    connection: Connection,
    acks: BTreeMap<u64, Vec<Ack>>,
    published: BTreeMap<u64, u64>,
    applied: u64,
    /// The spans of events being applied, ended once their position is committed.
    spans: BTreeMap<u64, Vec<tracing::Span>>,
}

/// A projection held still: nothing is applied until this is dropped.
pub struct Paused<V: View>(#[allow(dead_code)] tokio::sync::OwnedMutexGuard<Live<V>>);

/// One projection, shared by its loop, the admin API and the read API.
pub struct Projection<V: View> {
    live: Arc<tokio::sync::Mutex<Live<V>>>,
    checkpoint: watch::Sender<u64>,
    rebuild: parking_lot::Mutex<RebuildStatus>,
    store: Arc<dyn EventStore>,
    path: PathBuf,
    settings: Settings,
    started: Instant,
}

/// What the admin API needs of any projection.
pub trait Admin: Send + Sync {
    /// The projection's name.
    fn name(&self) -> &'static str;
    /// Its rebuild's status.
    fn status(&self) -> RebuildStatus;
    /// Starts a rebuild in the background.
    fn start_rebuild(self: Arc<Self>) -> Result<RebuildStatus, RebuildError>;
    /// Its checkpoint as it moves.
    fn checkpoints(&self) -> watch::Receiver<u64>;
}

impl<V: View> Projection<V> {
    /// Opens the view's file (`path`) and restores the view from its active generation.
    pub fn open(
        path: PathBuf,
        store: Arc<dyn EventStore>,
        settings: Settings,
    ) -> anyhow::Result<Arc<Projection<V>>> {
        let connection = viewdb::open(&path)?;
        let generation = viewdb::active(&connection)?;
        let (view, saved) = viewdb::load::<V>(&connection, generation)?;
        let checkpoint = saved.position;
        let live = Live {
            applied: saved.applied,
            projector: Projector::new(view, checkpoint, settings.gap_wait),
            generation,
            connection,
            acks: BTreeMap::new(),
            published: BTreeMap::new(),
            spans: BTreeMap::new(),
        };
        Ok(Arc::new(Projection {
            live: Arc::new(tokio::sync::Mutex::new(live)),
            checkpoint: watch::channel(checkpoint).0,
            rebuild: parking_lot::Mutex::new(RebuildStatus {
                projection: V::NAME,
                phase: Phase::Idle {
                    serving: generation,
                },
                last_equal_to_live: None,
            }),
            store,
            path,
            settings,
            started: Instant::now(),
        }))
    }

    /// Holds the projection still until the guard is dropped (the demo's slow projector).
    pub async fn pause(&self) -> Paused<V> {
        Paused(Arc::clone(&self.live).lock_owned().await)
    }

    /// The checkpoint committed last.
    pub fn checkpoint(&self) -> u64 {
        *self.checkpoint.borrow()
    }

    fn now(&self) -> Millis {
        Millis(self.started.elapsed().as_millis() as u64)
    }

    // ANCHOR: run
    /// Applies what arrives in `inbox` until it closes.
    pub async fn run(self: Arc<Self>, mut inbox: Inbox) -> anyhow::Result<()> {
        loop {
            let deadline = self.live.lock().await.projector.poll_timeout();
            let timer = deadline.map(|at| self.started + std::time::Duration::from_millis(at.0));
            tokio::select! {
                delivered = inbox.next() => {
                    let Some((envelope, ack)) = delivered else { return Ok(()) };
                    let mut live = self.live.lock().await;
                    self.offer(&mut live, envelope, ack);
                    for _ in 1..self.settings.batch.max(1) {
                        let Some((envelope, ack)) = inbox.try_next() else { break };
                        self.offer(&mut live, envelope, ack);
                    }
                    self.commit_then_ack(&mut live).await?;
                }
                () = async { match timer { Some(at) => tokio::time::sleep_until(at).await, None => std::future::pending().await } } => {
                    let mut live = self.live.lock().await;
                    live.projector.handle_timeout(self.now());
                    self.commit_then_ack(&mut live).await?;
                }
            }
        }
    }

    fn offer(&self, live: &mut Live<V>, envelope: Envelope, ack: Ack) {
        let position = envelope.recorded.position;
        let event = Positioned::decode(&envelope.recorded).unwrap_or_else(|error| {
            tracing::error!(%error, projection = V::NAME, "an event that does not decode is passed over");
            Positioned { position, fact: Fact::Other }
        });
        live.published.insert(position, envelope.published_ms);
        if let Some(telemetry) = &self.settings.telemetry {
            let trace = TraceHeaders::stored(envelope.traceparent, envelope.tracestate);
            let span = telemetry::project_span(telemetry, V::NAME, position, &trace);
            live.spans.entry(position).or_default().push(span);
        }
        live.acks.entry(position).or_default().push(ack);
        let Ok(()) = live
            .projector
            .handle_input(self.now(), Input::Deliver(event));
    }

    /// Commits what the projector applied (rows and checkpoint, one transaction), then
    /// acknowledges every message at or below the checkpoint.
    async fn commit_then_ack(&self, live: &mut Live<V>) -> anyhow::Result<()> {
        let mut rows = BTreeSet::new();
        let mut moved = false;
        let mut applied = 0;
        while let Some(output) = live.projector.poll_output() {
            match output {
                Output::Applied { rows: changed, .. } => {
                    rows.extend(changed);
                    moved = true;
                    applied += 1;
                }
                Output::GapDeclared { from, to } => {
                    tracing::warn!(
                        projection = V::NAME,
                        from,
                        to,
                        "positions never came: declared rolled back"
                    );
                    moved = true;
                }
                Output::Redelivered { .. } => {}
            }
        }
        let position = live.projector.checkpoint();
        if moved {
            let rows: Vec<(RowKey, Option<serde_json::Value>)> = rows
                .into_iter()
                .map(|key| {
                    let row = live.projector.view().row(&key);
                    (key, row)
                })
                .collect();
            let now = wall_ms();
            let published = live.published.get(&position).copied().unwrap_or(now);
            let checkpoint = Checkpoint {
                position,
                delay_ms: now.saturating_sub(published),
                committed_ms: now,
                applied: live.applied + applied,
            };
            let generation = live.generation;
            viewdb::commit(&mut live.connection, generation, &rows, checkpoint)?;
            live.applied = checkpoint.applied;
            live.published = live.published.split_off(&(position + 1));
            if self
                .settings
                .halt_after_commit
                .is_some_and(|at| position >= at)
            {
                println!("{}: committed up to {position}, not acknowledged", V::NAME);
                let _ = std::io::stdout().flush();
                std::future::pending::<()>().await;
            }
            let rest = live.spans.split_off(&(position + 1));
            drop(std::mem::replace(&mut live.spans, rest));
            self.checkpoint.send_replace(position);
        }
        let rest = live.acks.split_off(&(position + 1));
        let due = std::mem::replace(&mut live.acks, rest);
        for ack in due.into_values().flatten() {
            ack.send().await;
        }
        Ok(())
    }

    fn set_phase(&self, event: RebuildEvent) -> Result<Phase, RebuildError> {
        let mut status = self.rebuild.lock();
        status.phase = status.phase.next(event)?;
        Ok(status.phase)
    }

    // ANCHOR: rebuild
    /// Replays `$all` from zero into a new generation, switches reads to it once it has
    /// caught up with the live projection, and drops the old generation.
    async fn rebuild(self: Arc<Self>) -> anyhow::Result<()> {
        let Phase::Building {
            building, serving, ..
        } = self.rebuild.lock().phase
        else {
            anyhow::bail!("a rebuild runs only from Building");
        };
        let mut connection = viewdb::open(&self.path)?;
        viewdb::drop_generation(&mut connection, building)?;
        let mut projector = Projector::new(V::default(), 0, self.settings.gap_wait);
        let mut applied = 0;
        let mut phase = self.rebuild.lock().phase;
        while !matches!(phase, Phase::Switching { .. }) {
            let live = self.checkpoint();
            let page = self
                .replay_page(
                    &mut projector,
                    &mut connection,
                    building,
                    live,
                    &mut applied,
                )
                .await?;
            phase = self.set_phase(RebuildEvent::Progress {
                at: projector.checkpoint(),
                live,
            })?;
            if page == 0 && !matches!(phase, Phase::Switching { .. }) {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
        // Switching: the live projection pauses while the new generation takes the last steps.
        let mut live = self.live.lock().await;
        let target = live.projector.checkpoint();
        while projector.checkpoint() < target {
            if self
                .replay_page(
                    &mut projector,
                    &mut connection,
                    building,
                    target,
                    &mut applied,
                )
                .await?
                == 0
            {
                break;
            }
        }
        viewdb::switch(&live.connection, building)?;
        live.generation = building;
        live.applied = applied;
        let equal = projector.view() == live.projector.view();
        live.projector.replace_view(projector.view().clone());
        drop(live);
        self.set_phase(RebuildEvent::Switched)?;
        viewdb::drop_generation(&mut connection, serving)?;
        self.set_phase(RebuildEvent::Dropped)?;
        self.rebuild.lock().last_equal_to_live = Some(equal);
        Ok(())
    }
    // ANCHOR_END: rebuild

    /// Applies the next page of `$all` (up to `upto`) to the rebuild's projector and commits
    /// it into `generation`; returns how many events it applied.
    async fn replay_page(
        &self,
        projector: &mut Projector<V>,
        connection: &mut Connection,
        generation: u32,
        upto: u64,
        total: &mut u64,
    ) -> anyhow::Result<usize> {
        let after = projector.checkpoint();
        if after >= upto {
            return Ok(0);
        }
        let limit = (upto - after).min(REBUILD_PAGE as u64) as usize;
        let page = self.store.read_all(after, limit).await?;
        let mut rows = BTreeSet::new();
        let mut applied = 0;
        for recorded in page {
            let position = recorded.position;
            let event = Positioned::decode(&recorded).unwrap_or(Positioned {
                position,
                fact: Fact::Other,
            });
            let Ok(()) = projector.handle_input(Millis::ZERO, Input::Deliver(event));
            while let Some(output) = projector.poll_output() {
                if let Output::Applied { rows: changed, .. } = output {
                    rows.extend(changed);
                    applied += 1;
                }
            }
        }
        let rows: Vec<_> = rows
            .into_iter()
            .map(|key| {
                let row = projector.view().row(&key);
                (key, row)
            })
            .collect();
        let now = wall_ms();
        *total += applied as u64;
        let checkpoint = Checkpoint {
            position: projector.checkpoint(),
            delay_ms: 0,
            committed_ms: now,
            applied: *total,
        };
        viewdb::commit(connection, generation, &rows, checkpoint)?;
        Ok(applied)
    }
}

impl<V: View> Admin for Projection<V> {
    fn name(&self) -> &'static str {
        V::NAME
    }

    fn status(&self) -> RebuildStatus {
        self.rebuild.lock().clone()
    }

    fn start_rebuild(self: Arc<Self>) -> Result<RebuildStatus, RebuildError> {
        self.set_phase(RebuildEvent::Start {
            head: self.checkpoint(),
        })?;
        let status = self.status();
        tokio::spawn(async move {
            if let Err(error) = Arc::clone(&self).rebuild().await {
                tracing::error!(%error, projection = V::NAME, "the rebuild failed; the old generation still serves");
                let mut status = self.rebuild.lock();
                status.phase = Phase::Idle {
                    serving: status.phase.serving(),
                };
            }
        });
        Ok(status)
    }

    fn checkpoints(&self) -> watch::Receiver<u64> {
        self.checkpoint.subscribe()
    }
}
