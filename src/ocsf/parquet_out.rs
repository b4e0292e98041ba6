//! A class's rows as one Arrow batch of nested structs (Security Lake reads OCSF as nested
//! Parquet structs, not flattened names), written as zstd Parquet.
//!
//! The nesting comes from the dotted paths of [`super::columns`]: `metadata.product.name`
//! is the field `name` of the struct `product` of the struct `metadata`. A struct is null
//! when everything under it is, unless the class requires it.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Int32Array, Int64Array, MapBuilder, StringArray, StringBuilder,
    StructArray,
};
use arrow::buffer::NullBuffer;
use arrow::datatypes::{Field, Fields, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use super::columns::{Cell, ClassColumns, Kind, saturate_i32};

/// Rows per Parquet row group: small enough that a writer holds a few MiB, big enough for
/// readers to skip by statistics.
pub const ROW_GROUP_ROWS: usize = 65_536;

/// Writer settings: zstd, fixed row group size, fixed `created_by`, so the same export gives
/// the same bytes.
pub fn writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_created_by(format!("secpipe {}", env!("CARGO_PKG_VERSION")))
        .build()
}

/// A tree of the dotted paths: a leaf is a column index, a node a struct.
enum Node {
    Leaf(usize),
    Struct(Vec<(String, Node)>),
}

fn tree(class: &ClassColumns) -> Vec<(String, Node)> {
    let mut root: Vec<(String, Node)> = Vec::new();
    for (index, column) in class.columns.iter().enumerate() {
        let parts: Vec<&str> = column.path.split('.').collect();
        let mut level = &mut root;
        for (depth, part) in parts.iter().enumerate() {
            let last = depth + 1 == parts.len();
            let pos = match level.iter().position(|(name, _)| name == part) {
                Some(pos) => pos,
                None => {
                    let node = if last {
                        Node::Leaf(index)
                    } else {
                        Node::Struct(Vec::new())
                    };
                    level.push(((*part).to_owned(), node));
                    level.len() - 1
                }
            };
            if last {
                break;
            }
            match &mut level[pos].1 {
                Node::Struct(children) => level = children,
                // A path that is both a leaf and a struct is a bug in a class table.
                Node::Leaf(_) => break,
            }
        }
    }
    root
}

/// The Arrow schema of a class (that of an empty batch).
pub fn schema(class: &ClassColumns) -> Result<SchemaRef, ArrowError> {
    Ok(to_batch(class, &[])?.schema())
}

/// `rows` (each in `class.columns` order) as one batch.
pub fn to_batch(class: &ClassColumns, rows: &[Vec<Cell>]) -> Result<RecordBatch, ArrowError> {
    let root = tree(class);
    let mut fields = Vec::with_capacity(root.len());
    let mut arrays = Vec::with_capacity(root.len());
    for (name, node) in &root {
        let (field, array) = build(class, rows, name, name, node)?;
        fields.push(field);
        arrays.push(array);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
}

fn build(
    class: &ClassColumns,
    rows: &[Vec<Cell>],
    name: &str,
    path: &str,
    node: &Node,
) -> Result<(Field, ArrayRef), ArrowError> {
    match node {
        Node::Leaf(index) => {
            let kind = class.columns[*index].kind;
            let array = leaf(
                kind,
                rows.iter().map(|r| r.get(*index).unwrap_or(&Cell::Null)),
            )?;
            Ok((Field::new(name, array.data_type().clone(), true), array))
        }
        Node::Struct(children) => {
            let mut fields = Vec::with_capacity(children.len());
            let mut arrays: Vec<ArrayRef> = Vec::with_capacity(children.len());
            for (child_name, child) in children {
                let child_path = format!("{path}.{child_name}");
                let (field, array) = build(class, rows, child_name, &child_path, child)?;
                fields.push(field);
                arrays.push(array);
            }
            let required = class.required_objects.contains(&path);
            let nulls = if required {
                None
            } else {
                let valid: Vec<bool> = (0..rows.len())
                    .map(|i| arrays.iter().any(|a| a.is_valid(i)))
                    .collect();
                Some(NullBuffer::from(valid))
            };
            let fields = Fields::from(fields);
            let array = StructArray::try_new(fields.clone(), arrays, nulls)?;
            Ok((
                Field::new(name, arrow::datatypes::DataType::Struct(fields), true),
                Arc::new(array),
            ))
        }
    }
}

fn leaf<'a>(kind: Kind, cells: impl Iterator<Item = &'a Cell>) -> Result<ArrayRef, ArrowError> {
    let int = |c: &Cell| match c {
        Cell::Int(i) => Some(*i),
        _ => None,
    };
    Ok(match kind {
        Kind::Int => Arc::new(Int32Array::from_iter(
            cells.map(|c| int(c).map(saturate_i32)),
        )),
        Kind::Long => Arc::new(Int64Array::from_iter(cells.map(int))),
        Kind::Text => Arc::new(StringArray::from_iter(cells.map(|c| match c {
            Cell::Text(s) => Some(s.as_str()),
            _ => None,
        }))),
        Kind::Bool => Arc::new(BooleanArray::from_iter(cells.map(|c| match c {
            Cell::Bool(b) => Some(*b),
            _ => None,
        }))),
        Kind::Map => {
            let mut builder = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
            for cell in cells {
                match cell {
                    Cell::Map(pairs) => {
                        for (k, v) in pairs {
                            builder.keys().append_value(k);
                            builder.values().append_value(v);
                        }
                        builder.append(true)?;
                    }
                    _ => builder.append(false)?,
                }
            }
            Arc::new(builder.finish())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ocsf::classes::OcsfClass;
    use arrow::array::{Array, AsArray};

    #[test]
    fn every_class_has_a_nested_schema_with_base_fields() {
        for class in OcsfClass::ALL {
            let schema = schema(class.columns()).expect("schema");
            for name in ["class_uid", "metadata", "time", "unmapped", "src_endpoint"] {
                assert!(schema.field_with_name(name).is_ok(), "{name} in {class:?}");
            }
            let metadata = schema.field_with_name("metadata").expect("metadata");
            assert!(matches!(
                metadata.data_type(),
                arrow::datatypes::DataType::Struct(f) if f.iter().any(|f| f.name() == "product")
            ));
            let top = schema.fields().len();
            let leaves = class.columns().columns.len();
            assert!((20..=40).contains(&leaves), "{class:?}: {leaves} columns");
            assert!(top < leaves, "{class:?}: nothing nested");
        }
    }

    #[test]
    fn a_struct_is_null_only_when_empty_and_not_required() {
        use crate::ocsf::columns::{Column, col};
        static COLUMNS: [Column; 3] = [
            col("a.x", Kind::Text),
            col("b.y", Kind::Int),
            col("unmapped", Kind::Map),
        ];
        let class = ClassColumns {
            columns: &COLUMNS,
            required_objects: &["b"],
        };
        let rows = vec![
            vec![
                Cell::Text("v".into()),
                Cell::Null,
                Cell::Map(vec![("k".into(), "v".into())]),
            ],
            vec![Cell::Null, Cell::Null, Cell::Null],
        ];
        let batch = to_batch(&class, &rows).expect("batch");
        let a = batch.column(0).as_struct();
        assert!(a.is_valid(0) && a.is_null(1));
        let b = batch.column(1).as_struct();
        assert!(b.is_valid(0) && b.is_valid(1));
        assert_eq!(batch.column(2).as_map().value(0).len(), 1);
        assert!(batch.column(2).is_null(1));
    }
}
