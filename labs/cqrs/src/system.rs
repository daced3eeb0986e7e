//! The lab's pieces put together from a data directory: the write side (the store and its
//! API), the publisher, the projections and the read side, all in one process or one role per
//! process (`--role write|project|read`). Files in the directory: `store.db` (the event
//! store), `publisher.db` (the publisher's checkpoint), and one file per view.
//!
//! The publisher runs beside the projections over the in-process bus, starting from the
//! lowest view checkpoint (the bus keeps nothing across a restart, the views do); over
//! JetStream it runs on the write side with its own checkpoint, and the stream keeps what it
//! published.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use cqrs_core::{Details, Summary, View};
use event_sourcing_store::{Durability, EventStore, Sqlite};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::projection::{Admin, Projection, Settings};
use crate::publisher;
use crate::read::{self, ReadState};
use crate::telemetry::{self, CqrsTelemetry, TraceLog};
use crate::transport::Transport;
use crate::write::{self, WriteState};

/// Which pieces a process runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pieces {
    /// The write API (and, over JetStream, the publisher).
    pub write: bool,
    /// The projections (and, over the in-process bus, the publisher).
    pub project: bool,
    /// The read API.
    pub read: bool,
}

impl Pieces {
    /// Everything in one process.
    pub const ALL: Pieces = Pieces {
        write: true,
        project: true,
        read: true,
    };
}

/// A view's file in `dir`.
pub fn view_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.db"))
}

/// The views the lab serves, by name.
pub const VIEWS: [&str; 2] = [Details::NAME, Summary::NAME];

/// What [`start`] started.
pub struct Started {
    /// The routes of the pieces started.
    pub router: Router,
    /// Which transport carries the events.
    pub transport: &'static str,
    /// The order-details projection, when this process runs it.
    pub details: Option<Arc<Projection<Details>>>,
    /// The customer-summary projection, when this process runs it.
    pub summary: Option<Arc<Projection<Summary>>>,
    /// The last position published, when this process publishes.
    pub published: Option<watch::Receiver<u64>>,
    /// The store, when this process opened it.
    pub store: Option<Arc<Sqlite>>,
    /// The background tasks (publisher, projections); aborted on drop.
    pub tasks: Vec<JoinHandle<()>>,
}

impl Drop for Started {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn spawn_logged(
    what: &'static str,
    work: impl std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(error) = work.await {
            tracing::error!(error = format!("{error:#}"), "{what} stopped");
            eprintln!("{what} stopped: {error:#}");
        }
    })
}

/// Starts `pieces` on the files in `dir`, over JetStream when `nats_url` is given, untraced.
pub async fn start(
    dir: &Path,
    pieces: Pieces,
    nats_url: Option<&str>,
    settings: Settings,
) -> anyhow::Result<Started> {
    start_traced(dir, pieces, nats_url, settings, None).await
}

// ANCHOR: start
/// Starts `pieces` on the files in `dir`, over JetStream when `nats_url` is given; each API
/// traced to `telemetry`'s collector when it is given.
pub async fn start_traced(
    dir: &Path,
    pieces: Pieces,
    nats_url: Option<&str>,
    settings: Settings,
    telemetry: Option<&CqrsTelemetry>,
) -> anyhow::Result<Started> {
    std::fs::create_dir_all(dir)?;
    let deployment = dir.canonicalize()?.to_string_lossy().into_owned();
    let transport = match nats_url {
        Some(url) => Transport::nats(url, &deployment).await?,
        None => Transport::in_process(),
    };
    let nats = nats_url.is_some();
    let needs_store = pieces.write || pieces.project;
    let store = if needs_store {
        Some(Arc::new(Sqlite::open(
            &dir.join("store.db"),
            Durability::Normal,
        )?))
    } else {
        None
    };
    let traces = match (telemetry, needs_store) {
        (Some(_), true) => Some(Arc::new(TraceLog::open(&dir.join("store.db"))?)),
        _ => None,
    };
    let settings = Settings {
        telemetry: telemetry.and_then(|telemetry| telemetry.of(telemetry::PROJECT)),
        ..settings
    };
    let mut router = Router::new().route("/health", get(health));
    let mut tasks = Vec::new();
    let mut published = None;
    let (mut details, mut summary) = (None, None);
    let mut admin: Vec<Arc<dyn Admin>> = Vec::new();
    if let (true, Some(store)) = (pieces.project, &store) {
        let as_store: Arc<dyn EventStore> = store.clone();
        let d = Projection::<Details>::open(
            view_path(dir, Details::NAME),
            Arc::clone(&as_store),
            settings.clone(),
        )?;
        let s = Projection::<Summary>::open(
            view_path(dir, Summary::NAME),
            Arc::clone(&as_store),
            settings.clone(),
        )?;
        let d_inbox = transport.subscribe(Details::NAME).await?;
        let s_inbox = transport.subscribe(Summary::NAME).await?;
        let from = d.checkpoint().min(s.checkpoint());
        tasks.push(spawn_logged(
            "the order-details projection",
            Arc::clone(&d).run(d_inbox),
        ));
        tasks.push(spawn_logged(
            "the customer-summary projection",
            Arc::clone(&s).run(s_inbox),
        ));
        if !nats {
            let (sender, receiver) = watch::channel(from);
            published = Some(receiver);
            tasks.push(spawn_logged(
                "the publisher",
                publisher::run(
                    as_store,
                    transport.clone(),
                    from,
                    None,
                    sender,
                    traces.clone(),
                ),
            ));
        }
        admin.push(d.clone());
        admin.push(s.clone());
        details = Some(d);
        summary = Some(s);
    }
    if let (true, Some(store)) = (pieces.write, &store) {
        let as_store: Arc<dyn EventStore> = store.clone();
        let api = write::router(WriteState {
            store: Arc::clone(&as_store),
            traces: traces.clone(),
        });
        router = router.merge(telemetry::instrument(telemetry, telemetry::WRITE, api));
        if nats {
            let checkpoint = publisher::Checkpoint::open(&dir.join("publisher.db"))?;
            let from = checkpoint.get()?;
            let (sender, receiver) = watch::channel(from);
            published = Some(receiver);
            tasks.push(spawn_logged(
                "the publisher",
                publisher::run(
                    as_store,
                    transport.clone(),
                    from,
                    Some(checkpoint),
                    sender,
                    traces.clone(),
                ),
            ));
        }
    }
    if pieces.read || pieces.project {
        let views = VIEWS
            .iter()
            .map(|name| (*name, view_path(dir, name)))
            .collect();
        let api = read::router(ReadState {
            store: dir.join("store.db"),
            views,
            admin,
        });
        router = router.merge(telemetry::instrument(telemetry, telemetry::READ, api));
    }
    Ok(Started {
        router: router.fallback(lab_http::not_found),
        transport: transport.describe(),
        details,
        summary,
        published,
        store,
        tasks,
    })
}
// ANCHOR_END: start

async fn health() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({ "status": "ok", "lab": "cqrs" }))
}
