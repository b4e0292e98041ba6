//! `auth.failure` / `auth.success` → OCSF Authentication (3002), activity 1 Logon, status 2
//! Failure / 1 Success. `user.name` is the user (else the actor); the app (`sshd`) is
//! `service.name`; the host that logged it is `dst_endpoint.hostname`.

use super::classes::{Activity, ArchivedEvent, OcsfClass, class_columns, common_cells, unmapped};
use super::columns::{Cell, ClassColumns, Column};

static COLUMN_LIST: [Column; 31] = class_columns!(
    col("user.name", Text),
    col("service.name", Text),
    col("logon_type_id", Int),
);

/// The curated columns; `user` is required in OCSF 1.3.0.
pub static COLUMNS: ClassColumns = ClassColumns {
    columns: &COLUMN_LIST,
    required_objects: &["user"],
};

/// One row of [`COLUMNS`].
pub fn row(event: &ArchivedEvent) -> Vec<Cell> {
    let status = if event.kind == "auth.success" {
        (1, "Success")
    } else {
        (2, "Failure")
    };
    let activity = Activity {
        id: 1,
        name: "Logon",
        status: Some(status),
    };
    let mut cells = common_cells(OcsfClass::Authentication, &activity, event);
    cells.push(Cell::text(event.user.or(event.actor)));
    cells.push(Cell::text(event.app));
    // 0 Unknown: a log line rarely says whether a logon was interactive or over the network.
    cells.push(Cell::Int(0));
    let actor = event.user.and(event.actor.map(str::to_owned));
    cells.push(unmapped(event, &[("secpipe.actor", actor)]));
    cells
}
