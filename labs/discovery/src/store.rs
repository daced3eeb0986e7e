//! Registrations on disk (SQLite): written before a registration is acknowledged, removed
//! with the instance, read back when the registry starts again.

use std::path::Path;

use rusqlite::{Connection, params};

use discovery_core::ServiceSpec;

/// The registry's SQLite file (or an in-memory database for tests and the demo).
#[derive(Debug)]
pub struct Store {
    conn: Connection,
}

/// A failure of the database itself (not of the caller's input).
pub type StoreError = rusqlite::Error;

impl Store {
    /// Opens (or creates) the file at `path`; `None` keeps everything in memory.
    pub fn open(path: Option<&Path>) -> Result<Store, StoreError> {
        let conn = match path {
            Some(path) => Connection::open(path)?,
            None => Connection::open_in_memory()?,
        };
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             CREATE TABLE IF NOT EXISTS instances (
                 id   TEXT PRIMARY KEY,
                 spec TEXT NOT NULL
             );",
        )?;
        Ok(Store { conn })
    }

    /// Writes (or replaces) an instance's registration.
    pub fn save(&self, spec: &ServiceSpec) -> Result<(), StoreError> {
        let json = serde_json::to_string(spec)
            .map_err(|error| rusqlite::Error::ToSqlConversionFailure(Box::new(error)))?;
        self.conn.execute(
            "INSERT INTO instances (id, spec) VALUES (?1, ?2)
             ON CONFLICT (id) DO UPDATE SET spec = excluded.spec",
            params![spec.id, json],
        )?;
        Ok(())
    }

    /// Removes an instance's registration.
    pub fn delete(&self, id: &str) -> Result<(), StoreError> {
        self.conn
            .execute("DELETE FROM instances WHERE id = ?1", params![id])?;
        Ok(())
    }

    /// Every registration, to restore after a restart; rows that no longer decode are skipped.
    pub fn load(&self) -> Result<Vec<ServiceSpec>, StoreError> {
        let mut statement = self
            .conn
            .prepare("SELECT spec FROM instances ORDER BY id")?;
        let rows = statement.query_map([], |row| row.get::<_, String>(0))?;
        let mut specs = Vec::new();
        for row in rows {
            if let Ok(spec) = serde_json::from_str(&row?) {
                specs.push(spec);
            }
        }
        Ok(specs)
    }
}
