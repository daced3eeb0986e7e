//! The collector's span store: one SQLite file (or memory), spans written as they arrive,
//! a row per kept trace with its verdict and the view the waterfall draws, and the queries
//! behind the API (a trace by id; traces by service, minimum duration, error).

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use trace_context_core::{Decision, TraceId};

use crate::otlp::Received;
use crate::waterfall::TraceView;

/// A span id (hex) and its attributes.
pub type SpanAttributes = (String, Vec<(String, String)>);

/// The store, shared by the collector's writer task and the query handlers.
#[derive(Clone, Debug)]
pub struct Store {
    db: Arc<Mutex<Connection>>,
}

/// One kept trace in a list.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct TraceSummary {
    /// The trace's id, as hex.
    pub trace_id: String,
    /// Why it was kept.
    pub verdict: String,
    /// Root to last end, after skew correction.
    pub duration_ms: f64,
    /// Whether any span failed.
    pub error: bool,
    /// How many spans.
    pub spans: u64,
    /// The services it crossed, comma-separated.
    pub services: String,
    /// The root span's name.
    pub root: String,
}

/// A query over kept traces.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct TraceQuery {
    /// Only traces with a span of this service.
    pub service: Option<String>,
    /// Only traces at least this long.
    pub min_duration_ms: Option<f64>,
    /// Only traces with (true) or without (false) an error.
    pub error: Option<bool>,
    /// At most this many (default 50, at most 1000).
    pub limit: Option<u32>,
}

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
CREATE TABLE IF NOT EXISTS spans (
    trace_id TEXT NOT NULL, span_id TEXT NOT NULL, parent TEXT, service TEXT NOT NULL,
    name TEXT NOT NULL, start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL, error INTEGER NOT NULL,
    attributes TEXT NOT NULL, PRIMARY KEY (trace_id, span_id));
CREATE TABLE IF NOT EXISTS traces (
    trace_id TEXT PRIMARY KEY, verdict TEXT NOT NULL, duration_ns INTEGER NOT NULL,
    error INTEGER NOT NULL, spans INTEGER NOT NULL, services TEXT NOT NULL, root TEXT NOT NULL,
    view TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS traces_by_duration ON traces (duration_ns);
";

impl Store {
    /// Opens (or creates) the store at `path`; `None` keeps it in memory.
    pub fn open(path: Option<&Path>) -> anyhow::Result<Store> {
        let db = match path {
            Some(path) => Connection::open(path)?,
            None => Connection::open_in_memory()?,
        };
        db.execute_batch(SCHEMA)?;
        Ok(Store {
            db: Arc::new(Mutex::new(db)),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.db
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `work` in one transaction (`BEGIN IMMEDIATE`): a batch's spans and the decisions
    /// they caused are stored together or not at all.
    pub fn write<T>(
        &self,
        work: impl FnOnce(&Writer<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        let mut db = self.lock();
        let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let out = work(&Writer { tx: &tx })?;
        tx.commit()?;
        Ok(out)
    }

    /// The stored view of a kept trace.
    pub fn trace(&self, trace_id: &str) -> rusqlite::Result<Option<TraceView>> {
        let db = self.lock();
        let view: Option<String> = db
            .query_row(
                "SELECT view FROM traces WHERE trace_id = ?1",
                [trace_id],
                |r| r.get(0),
            )
            .optional()?;
        Ok(view.and_then(|v| serde_json::from_str(&v).ok()))
    }

    /// Kept traces matching `query`, longest first.
    pub fn traces(&self, query: &TraceQuery) -> rusqlite::Result<Vec<TraceSummary>> {
        let db = self.lock();
        let mut statement = db.prepare(
            "SELECT trace_id, verdict, duration_ns, error, spans, services, root FROM traces
             WHERE (?1 IS NULL OR ',' || services || ',' LIKE '%,' || ?1 || ',%')
               AND duration_ns >= ?2 AND (?3 IS NULL OR error = ?3)
             ORDER BY duration_ns DESC, trace_id LIMIT ?4",
        )?;
        let min_ns = (query.min_duration_ms.unwrap_or(0.0).max(0.0) * 1e6) as i64;
        let limit = query.limit.unwrap_or(50).min(1000);
        let rows =
            statement.query_map(params![query.service, min_ns, query.error, limit], |r| {
                Ok(TraceSummary {
                    trace_id: r.get(0)?,
                    verdict: r.get(1)?,
                    duration_ms: r.get::<_, i64>(2)? as f64 / 1e6,
                    error: r.get(3)?,
                    spans: r.get::<_, i64>(4)? as u64,
                    services: r.get(5)?,
                    root: r.get(6)?,
                })
            })?;
        rows.collect()
    }

    /// How many spans are stored, over all traces (kept and undecided).
    pub fn span_count(&self) -> rusqlite::Result<u64> {
        let n: i64 = self
            .lock()
            .query_row("SELECT count(*) FROM spans", [], |r| r.get(0))?;
        Ok(n as u64)
    }
}

/// Writes inside one transaction.
pub struct Writer<'a> {
    tx: &'a rusqlite::Transaction<'a>,
}

impl Writer<'_> {
    /// Stores an arriving span.
    pub fn span(&self, span: &Received) -> rusqlite::Result<()> {
        let s = &span.record;
        let attributes = serde_json::to_string(&span.attributes).unwrap_or_default();
        self.tx
            .prepare_cached(
                "INSERT OR IGNORE INTO spans VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                s.trace_id.to_string(),
                s.span_id.to_string(),
                s.parent.map(|p| p.to_string()),
                s.service,
                s.name,
                s.start_ns as i64,
                s.end_ns as i64,
                s.error,
                attributes,
            ])?;
        Ok(())
    }

    /// Applies a decision: a kept trace gets its row and view; a dropped one loses its spans.
    pub fn decision(&self, decision: &Decision) -> rusqlite::Result<()> {
        let id = decision.trace_id.to_string();
        if !decision.verdict.kept() {
            self.tx
                .execute("DELETE FROM spans WHERE trace_id = ?1", [&id])?;
            return Ok(());
        }
        let attributes = self.attributes(decision.trace_id)?;
        let view = TraceView::of(decision, &attributes);
        let mut services: Vec<&str> = decision
            .tree
            .nodes
            .iter()
            .map(|n| n.span.service.as_str())
            .collect();
        services.sort_unstable();
        services.dedup();
        let root = decision
            .tree
            .nodes
            .first()
            .map(|n| n.span.name.clone())
            .unwrap_or_default();
        self.tx.execute(
            "INSERT OR REPLACE INTO traces VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                id,
                decision.verdict.reason(),
                decision.duration_ns as i64,
                view.error,
                decision.tree.nodes.len() as i64,
                services.join(","),
                root,
                serde_json::to_string(&view).unwrap_or_default(),
            ],
        )?;
        Ok(())
    }

    fn attributes(&self, trace_id: TraceId) -> rusqlite::Result<Vec<SpanAttributes>> {
        let mut statement = self
            .tx
            .prepare_cached("SELECT span_id, attributes FROM spans WHERE trace_id = ?1")?;
        let rows = statement.query_map([trace_id.to_string()], |r| {
            let json: String = r.get(1)?;
            Ok((
                r.get::<_, String>(0)?,
                serde_json::from_str(&json).unwrap_or_default(),
            ))
        })?;
        rows.collect()
    }
}
