//! A read model as plain data: the [`View`] trait every projection's model implements. A
//! view applies a fact through a pure function and names the rows it changed, so the lab can
//! write exactly those rows (with the checkpoint, in one transaction) and read a view back
//! from its rows after a restart.

use std::fmt::Debug;

use serde_json::Value;

use crate::fact::Fact;

// ANCHOR: view
/// One row of a view: its table and its key within the table.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RowKey {
    /// The table, one of the view's [`View::TABLES`].
    pub table: &'static str,
    /// The row's key within it.
    pub key: String,
}

/// A read model: tables of rows, changed only by [`View::apply`].
pub trait View: Default + Clone + PartialEq + Debug + Send + 'static {
    /// The projection's name, as the admin API and `/metrics` call it.
    const NAME: &'static str;
    /// The tables the view keeps.
    const TABLES: &'static [&'static str];

    /// Applies one fact and returns the rows it changed (a row it deleted included). A fact
    /// the view has no use for changes nothing and returns no rows.
    fn apply(&mut self, fact: &Fact) -> Vec<RowKey>;

    /// The row as JSON, or `None` when the view holds no such row.
    fn row(&self, key: &RowKey) -> Option<Value>;

    /// Puts back a row read from storage (what [`View::row`] returned for it).
    fn restore(&mut self, key: RowKey, row: Value) -> Result<(), serde_json::Error>;
}
// ANCHOR_END: view

/// The table name among `tables` equal to `name`, as the `'static` string a [`RowKey`] holds.
pub fn table_named(tables: &'static [&'static str], name: &str) -> Option<&'static str> {
    tables.iter().copied().find(|table| *table == name)
}
