//! `apikey.revoke_attempt` → OCSF API Activity (6003), activity 4 Delete (revoking a key ends
//! it). `api.operation` is the application's own event name when secpipe kept it (`reason`),
//! else `apikey.revoke_attempt`; `actor.user.name` who asked; `src_endpoint.ip` from where.
//! Whether the attempt succeeded is not in the log line: `status_id` 0 Unknown.

use super::classes::{Activity, ArchivedEvent, OcsfClass, class_columns, common_cells, unmapped};
use super::columns::{Cell, ClassColumns, Column};

static COLUMN_LIST: [Column; 31] = class_columns!(
    col("actor.user.name", Text),
    col("api.operation", Text),
    col("api.service.name", Text),
);

/// The curated columns; OCSF 1.3.0 requires `actor`, `api` and `src_endpoint`.
pub static COLUMNS: ClassColumns = ClassColumns {
    columns: &COLUMN_LIST,
    required_objects: &["actor", "api", "src_endpoint"],
};

/// One row of [`COLUMNS`].
pub fn row(event: &ArchivedEvent) -> Vec<Cell> {
    let activity = Activity {
        id: 4,
        name: "Delete",
        status: Some((0, "Unknown")),
    };
    let mut cells = common_cells(OcsfClass::ApiActivity, &activity, event);
    cells.push(Cell::text(event.actor.or(event.user)));
    cells.push(Cell::Text(event.reason.unwrap_or(event.kind).to_owned()));
    cells.push(Cell::text(event.app));
    cells.push(unmapped(event, &[]));
    cells
}
