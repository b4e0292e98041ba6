//! `data.read` / `data.delete` / `data.search` / `data.namespace_violation` → OCSF Datastore
//! Activity (6005): activity 1 Read, 7 Delete, 4 Query; a namespace violation is 99 Other
//! (the log names the crossing, not always the operation). The namespace is `database.name`,
//! the record count `count`, the agent or user `actor.user.name`.

use super::classes::{Activity, ArchivedEvent, OcsfClass, class_columns, common_cells, unmapped};
use super::columns::{Cell, ClassColumns, Column};

static COLUMN_LIST: [Column; 30] =
    class_columns!(col("actor.user.name", Text), col("database.name", Text),);

/// The curated columns; OCSF 1.3.0 requires `actor` and `src_endpoint`.
pub static COLUMNS: ClassColumns = ClassColumns {
    columns: &COLUMN_LIST,
    required_objects: &["actor", "src_endpoint"],
};

/// One row of [`COLUMNS`].
pub fn row(event: &ArchivedEvent) -> Vec<Cell> {
    let (id, name) = match event.kind {
        "data.read" => (1, "Read"),
        "data.delete" => (7, "Delete"),
        "data.search" => (4, "Query"),
        _ => (99, "Other"),
    };
    let activity = Activity {
        id,
        name,
        status: None,
    };
    let mut cells = common_cells(OcsfClass::DatastoreActivity, &activity, event);
    cells.push(Cell::text(event.actor.or(event.user)));
    cells.push(Cell::text(event.namespace));
    cells.push(unmapped(event, &[]));
    cells
}
