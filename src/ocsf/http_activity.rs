//! `http.request` and `injection.attempt` → OCSF HTTP Activity (4002). The activity is the
//! request method (3 Get, 6 Post, …, 99 Other); `http_request.url.path`, the method, the
//! response code and length, the client as `src_endpoint.ip`. `secpipe.kind` in `unmapped`
//! tells an injection attempt from a plain request, and `status_detail` says which kind of
//! injection (`reason`).

use super::classes::{Activity, ArchivedEvent, OcsfClass, class_columns, common_cells, unmapped};
use super::columns::{Cell, ClassColumns, Column};

static COLUMN_LIST: [Column; 33] = class_columns!(
    col("http_request.http_method", Text),
    col("http_request.url.path", Text),
    col("http_response.code", Int),
    col("http_response.length", Long),
    col("user.name", Text),
);

/// The curated columns; OCSF 1.3.0 requires `dst_endpoint`, `http_request` and
/// `http_response`.
pub static COLUMNS: ClassColumns = ClassColumns {
    columns: &COLUMN_LIST,
    required_objects: &["dst_endpoint", "http_request", "http_response"],
};

/// The activity of a request method (OCSF 1.3.0 HTTP Activity enum).
fn activity_of(method: Option<&str>) -> (i64, &'static str) {
    let Some(method) = method else {
        return (0, "Unknown");
    };
    match method.to_ascii_uppercase().as_str() {
        "CONNECT" => (1, "Connect"),
        "DELETE" => (2, "Delete"),
        "GET" => (3, "Get"),
        "HEAD" => (4, "Head"),
        "OPTIONS" => (5, "Options"),
        "POST" => (6, "Post"),
        "PUT" => (7, "Put"),
        "TRACE" => (8, "Trace"),
        "PATCH" => (9, "Patch"),
        _ => (99, "Other"),
    }
}

/// One row of [`COLUMNS`].
pub fn row(event: &ArchivedEvent) -> Vec<Cell> {
    let (id, name) = activity_of(event.http_method);
    let activity = Activity {
        id,
        name,
        status: None,
    };
    let mut cells = common_cells(OcsfClass::HttpActivity, &activity, event);
    cells.push(Cell::text(event.http_method));
    cells.push(Cell::text(event.http_path));
    cells.push(Cell::int(event.http_status));
    cells.push(Cell::int(event.bytes));
    cells.push(Cell::text(event.user.or(event.actor)));
    cells.push(unmapped(event, &[]));
    cells
}
