//! A class's curated columns as flat dotted paths (`src_endpoint.ip`), and one row of values
//! in that order. The same row becomes a nested JSON object ([`to_json`]) or a row of nested
//! Parquet structs ([`super::parquet_out`]), so the two outputs cannot disagree about a field.
//!
//! An object (a path prefix) is absent when every value under it is null, unless the class
//! names it required: then it is written even when secpipe has nothing to put in it (an empty
//! object in JSON, a struct of nulls in Parquet), as OCSF 1.3.0 requires the attribute.

use serde_json::{Map, Value};

/// The type of one leaf column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// OCSF `integer_t` (32-bit; larger values saturate).
    Int,
    /// OCSF `long_t` and `timestamp_t` (ms since the epoch).
    Long,
    Text,
    Bool,
    /// `map<string,string>`, for `unmapped`.
    Map,
}

/// One leaf column: its dotted path and type.
#[derive(Clone, Copy, Debug)]
pub struct Column {
    pub path: &'static str,
    pub kind: Kind,
}

/// Shorthand for the class tables.
pub const fn col(path: &'static str, kind: Kind) -> Column {
    Column { path, kind }
}

/// One value.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Text(String),
    Bool(bool),
    /// Sorted by key (a `BTreeMap` iterated), so output bytes are deterministic.
    Map(Vec<(String, String)>),
}

impl Cell {
    pub fn text(value: Option<&str>) -> Cell {
        value.map_or(Cell::Null, |s| Cell::Text(s.to_owned()))
    }
    pub fn int(value: Option<i64>) -> Cell {
        value.map_or(Cell::Null, Cell::Int)
    }
    pub fn is_null(&self) -> bool {
        matches!(self, Cell::Null)
    }
}

/// The columns of a class, and the objects it must always write.
pub struct ClassColumns {
    pub columns: &'static [Column],
    /// Object paths OCSF 1.3.0 requires for the class (`http_response`, `actor`, …).
    pub required_objects: &'static [&'static str],
}

/// `row` (values in `class.columns` order) as a nested JSON object. Null leaves are left out.
///
/// ```
/// use secpipe::ocsf::columns::{col, Cell, ClassColumns, Kind, to_json};
/// static COLUMNS: [secpipe::ocsf::columns::Column; 3] =
///     [col("class_uid", Kind::Int), col("src_endpoint.ip", Kind::Text), col("user.name", Kind::Text)];
/// let class = ClassColumns { columns: &COLUMNS, required_objects: &["user"] };
/// let v = to_json(&class, &[Cell::Int(3002), Cell::Text("192.0.2.1".into()), Cell::Null]);
/// assert_eq!(v, serde_json::json!({"class_uid": 3002, "src_endpoint": {"ip": "192.0.2.1"}, "user": {}}));
/// ```
pub fn to_json(class: &ClassColumns, row: &[Cell]) -> Value {
    let mut root = Map::new();
    for object in class.required_objects {
        insert_path(&mut root, object, None);
    }
    for (column, cell) in class.columns.iter().zip(row) {
        let value = match cell {
            Cell::Null => continue,
            Cell::Int(i) => Value::from(match column.kind {
                Kind::Int => i64::from(saturate_i32(*i)),
                _ => *i,
            }),
            Cell::Text(s) => Value::String(s.clone()),
            Cell::Bool(b) => Value::Bool(*b),
            Cell::Map(pairs) => Value::Object(
                pairs
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect(),
            ),
        };
        insert_path(&mut root, column.path, Some(value));
    }
    Value::Object(root)
}

/// Set `path` in `root` to `value`, making the objects on the way; `None` makes only the
/// objects.
fn insert_path(root: &mut Map<String, Value>, path: &str, value: Option<Value>) {
    let mut parts = path.split('.').peekable();
    let mut node = root;
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            match value {
                Some(value) => {
                    node.insert(part.to_owned(), value);
                }
                None => {
                    node.entry(part.to_owned())
                        .or_insert_with(|| Value::Object(Map::new()));
                }
            }
            return;
        }
        let child = node
            .entry(part.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if !child.is_object() {
            *child = Value::Object(Map::new());
        }
        let Value::Object(child) = child else { return };
        node = child;
    }
}

/// OCSF `integer_t` is 32-bit.
pub fn saturate_i32(i: i64) -> i32 {
    i32::try_from(i).unwrap_or(if i < 0 { i32::MIN } else { i32::MAX })
}
