//! Row leaves and row roots: the hashing contract of the archive (format version 1).
//!
//! This encoding is a **contract**: an auditor can re-implement it from this page alone and
//! must get the same hashes. It is defined over logical values, not Parquet bytes, so a file
//! re-encoded by another tool still proves the same rows.
//!
//! ## Canonical row
//! For each column of the table schema ([`super::schema`]), in schema order, append:
//!
//! | bytes | meaning |
//! |---|---|
//! | 1 | type tag: `0x01` integer, `0x02` boolean, `0x03` UTF-8 text, `0x04` binary, `0x05` timestamp (µs since the Unix epoch, UTC), `0x06` list of integers |
//! | 1 | null flag: `0x00` value present, `0x01` null |
//! | 4 | length of the value bytes, u32 big-endian (0 for null) |
//! | n | value bytes (none for null) |
//!
//! Value bytes: integer and timestamp → 8 bytes, two's-complement big-endian (whatever the
//! Parquet width, e.g. `http_status` is hashed as 8 bytes); boolean → 1 byte `0x00`/`0x01`;
//! text → its UTF-8 bytes; binary → the bytes; list of integers → 8 bytes big-endian per
//! element, in order (a null element is not allowed; the length is 8 × elements).
//! Column names are not part of the row; they are fixed by `schema_sha256` in the manifest.
//!
//! ## Leaf and root
//! - `row_hash = SHA-256(canonical row)`
//! - `leaf = SHA-256(0x00 ‖ "secpipe/row/v1" ‖ archive_id (16 raw bytes) ‖ u64be(seq) ‖ row_hash)`
//! - `row_root` = RFC 6962 Merkle tree hash over the file's leaves in file order:
//!   `MTH({}) = SHA-256()`, `MTH({d}) = d` (the leaf is already domain-separated by its `0x00`
//!   prefix), `MTH(D[n]) = SHA-256(0x01 ‖ MTH(D[0:k]) ‖ MTH(D[k:n]))` with `k` the largest
//!   power of two smaller than `n`.
//!
//! ```
//! use secpipe::archive::canonical::{merkle_root, sha256};
//! let a = sha256(&[b"a"]);
//! let b = sha256(&[b"b"]);
//! assert_eq!(merkle_root(&[a]), a);
//! assert_eq!(merkle_root(&[a, b]), sha256(&[&[1u8], &a, &b]));
//! ```

use arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BooleanArray, Int32Array, Int64Array, ListArray,
    StringArray, TimestampMicrosecondArray,
};
use arrow::compute::cast;
use arrow::datatypes::{
    DataType, Int32Type, Int64Type, SchemaRef, TimeUnit, TimestampMicrosecondType,
};
use arrow::record_batch::RecordBatch;
use sha2::{Digest, Sha256};

/// Domain separation label of format version 1.
pub const ROW_LABEL_TEXT: &str = "secpipe/row/v1";
/// [`ROW_LABEL_TEXT`] as bytes.
pub const ROW_LABEL: &[u8] = ROW_LABEL_TEXT.as_bytes();

const TAG_INT: u8 = 0x01;
const TAG_BOOL: u8 = 0x02;
const TAG_TEXT: u8 = 0x03;
const TAG_BINARY: u8 = 0x04;
const TAG_TIMESTAMP: u8 = 0x05;
const TAG_INT_LIST: u8 = 0x06;

/// SHA-256 over the concatenation of `parts`.
pub fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    digest_bytes(hasher)
}

/// Finalize a hasher into a plain array.
pub fn digest_bytes(hasher: Sha256) -> [u8; 32] {
    let out = hasher.finalize();
    let mut bytes = [0u8; 32];
    bytes.copy_from_slice(&out);
    bytes
}

/// The leaf of one row.
pub fn row_leaf(archive_id: &[u8; 16], seq: u64, row_hash: &[u8; 32]) -> [u8; 32] {
    sha256(&[&[0x00], ROW_LABEL, archive_id, &seq.to_be_bytes(), row_hash])
}

/// RFC 6962 Merkle tree hash over `leaves` (see the module doc).
pub fn merkle_root(leaves: &[[u8; 32]]) -> [u8; 32] {
    match leaves.len() {
        0 => sha256(&[]),
        1 => leaves[0],
        n => {
            let k = largest_power_of_two_below(n);
            let left = merkle_root(&leaves[..k]);
            let right = merkle_root(&leaves[k..]);
            sha256(&[&[0x01], &left, &right])
        }
    }
}

/// Rows per chunk of [`chunk_roots`].
pub const CHUNK_ROWS: usize = 1024;

/// The Merkle roots of consecutive [`CHUNK_ROWS`]-leaf chunks (the last may be shorter).
///
/// Because `CHUNK_ROWS` is a power of two, RFC 6962's split points fall on chunk
/// boundaries, so `merkle_root(&chunk_roots(leaves)) == merkle_root(leaves)`: the chunk
/// roots stored in a file's metadata are authenticated by the manifest's `row_root`, and
/// let verify narrow a changed row down to one chunk.
///
/// ```
/// use secpipe::archive::canonical::{chunk_roots, merkle_root, sha256};
/// let leaves: Vec<[u8; 32]> = (0..3000u32).map(|i| sha256(&[&i.to_be_bytes()])).collect();
/// assert_eq!(merkle_root(&chunk_roots(&leaves)), merkle_root(&leaves));
/// ```
pub fn chunk_roots(leaves: &[[u8; 32]]) -> Vec<[u8; 32]> {
    leaves.chunks(CHUNK_ROWS).map(merkle_root).collect()
}

fn largest_power_of_two_below(n: usize) -> usize {
    debug_assert!(n > 1);
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// A column prepared for canonical encoding.
enum Column<'a> {
    Int(&'a Int64Array),
    Int32(&'a Int32Array),
    Bool(&'a BooleanArray),
    Text(&'a StringArray),
    Binary(&'a BinaryArray),
    Timestamp(&'a TimestampMicrosecondArray),
    IntList(&'a ListArray),
}

/// Why a batch cannot be hashed (a column missing or of a type that cannot be read as the
/// schema's type): the file does not hold the table it claims to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeError(pub String);

/// Bring `batch` to exactly the types of `schema` (by column name), so that files re-encoded
/// by other tools (e.g. strings as `large_string`) hash the same. Returns the columns in
/// schema order.
pub fn conform(batch: &RecordBatch, schema: &SchemaRef) -> Result<Vec<ArrayRef>, ShapeError> {
    let mut out = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let column = batch
            .column_by_name(field.name())
            .ok_or_else(|| ShapeError(format!("column `{}` is missing", field.name())))?;
        if column.data_type() == field.data_type() {
            out.push(column.clone());
        } else {
            let converted = cast(column, field.data_type()).map_err(|e| {
                ShapeError(format!(
                    "column `{}` has type {} and cannot be read as {}: {e}",
                    field.name(),
                    column.data_type(),
                    field.data_type()
                ))
            })?;
            out.push(converted);
        }
    }
    Ok(out)
}

/// Compute the leaf of every row of `columns` (conformed to the table schema, `seq` first).
/// Returns the seqs and the leaves.
pub fn leaves_of(
    archive_id: &[u8; 16],
    columns: &[ArrayRef],
) -> Result<(Vec<i64>, Vec<[u8; 32]>), ShapeError> {
    let views = columns
        .iter()
        .map(|c| view(c.as_ref()))
        .collect::<Result<Vec<_>, _>>()?;
    let Some(Column::Int(seqs)) = views.first() else {
        return Err(ShapeError(
            "the first column must be the integer `seq`".into(),
        ));
    };
    let rows = seqs.len();
    let mut seq_out = Vec::with_capacity(rows);
    let mut leaves = Vec::with_capacity(rows);
    let mut buf = Vec::with_capacity(512);
    for row in 0..rows {
        buf.clear();
        for column in &views {
            encode_value(&mut buf, column, row)?;
        }
        let seq = if seqs.is_null(row) {
            return Err(ShapeError(format!("row {row} has a null seq")));
        } else {
            seqs.value(row)
        };
        let row_hash = sha256(&[&buf]);
        // A negative seq cannot come from secpipe; hash its bit pattern so the leaf still
        // differs from every genuine row.
        leaves.push(row_leaf(archive_id, seq as u64, &row_hash));
        seq_out.push(seq);
    }
    Ok((seq_out, leaves))
}

fn view(array: &dyn Array) -> Result<Column<'_>, ShapeError> {
    Ok(match array.data_type() {
        DataType::Int64 => Column::Int(array.as_primitive::<Int64Type>()),
        DataType::Boolean => Column::Bool(array.as_boolean()),
        DataType::Utf8 => Column::Text(array.as_string::<i32>()),
        DataType::Binary => Column::Binary(array.as_binary::<i32>()),
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            Column::Timestamp(array.as_primitive::<TimestampMicrosecondType>())
        }
        DataType::List(item) if item.data_type() == &DataType::Int64 => {
            Column::IntList(array.as_list::<i32>())
        }
        // Narrower integers (http_status is Int32 in Parquet) hash as 8-byte integers.
        DataType::Int32 => Column::Int32(array.as_primitive::<Int32Type>()),
        other => return Err(ShapeError(format!("unsupported column type {other}"))),
    })
}

fn put(buf: &mut Vec<u8>, tag: u8, value: Option<&[u8]>) {
    buf.push(tag);
    match value {
        None => {
            buf.push(0x01);
            buf.extend_from_slice(&0u32.to_be_bytes());
        }
        Some(bytes) => {
            buf.push(0x00);
            // Values are at most a few MiB (max_line); saturate rather than wrap if not.
            let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
            buf.extend_from_slice(&len.to_be_bytes());
            buf.extend_from_slice(bytes);
        }
    }
}

fn encode_value(buf: &mut Vec<u8>, column: &Column<'_>, row: usize) -> Result<(), ShapeError> {
    match column {
        Column::Int(a) => put(
            buf,
            TAG_INT,
            a.is_valid(row)
                .then(|| a.value(row).to_be_bytes())
                .as_ref()
                .map(|b| &b[..]),
        ),
        Column::Int32(a) => put(
            buf,
            TAG_INT,
            a.is_valid(row)
                .then(|| i64::from(a.value(row)).to_be_bytes())
                .as_ref()
                .map(|b| &b[..]),
        ),
        Column::Timestamp(a) => put(
            buf,
            TAG_TIMESTAMP,
            a.is_valid(row)
                .then(|| a.value(row).to_be_bytes())
                .as_ref()
                .map(|b| &b[..]),
        ),
        Column::Bool(a) => put(
            buf,
            TAG_BOOL,
            a.is_valid(row)
                .then(|| [u8::from(a.value(row))])
                .as_ref()
                .map(|b| &b[..]),
        ),
        Column::Text(a) => put(
            buf,
            TAG_TEXT,
            a.is_valid(row).then(|| a.value(row).as_bytes()),
        ),
        Column::Binary(a) => put(buf, TAG_BINARY, a.is_valid(row).then(|| a.value(row))),
        Column::IntList(a) => {
            if a.is_null(row) {
                put(buf, TAG_INT_LIST, None);
            } else {
                let items = a.value(row);
                let ints = items.as_primitive::<Int64Type>();
                let mut bytes = Vec::with_capacity(ints.len() * 8);
                for i in 0..ints.len() {
                    if ints.is_null(i) {
                        return Err(ShapeError(format!("row {row}: null element in a list")));
                    }
                    bytes.extend_from_slice(&ints.value(i).to_be_bytes());
                }
                put(buf, TAG_INT_LIST, Some(&bytes));
            }
        }
    }
    Ok(())
}

/// Hex of a schema description; the manifest's `schema_sha256`.
pub fn schema_sha256(schema: &SchemaRef) -> String {
    let mut text = String::new();
    for field in schema.fields() {
        text.push_str(&format!(
            "{}:{}:{}\n",
            field.name(),
            field.data_type(),
            if field.is_nullable() {
                "null"
            } else {
                "required"
            }
        ));
    }
    hex::encode(sha256(&[ROW_LABEL, b"\n", text.as_bytes()]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(i: u8) -> [u8; 32] {
        sha256(&[&[0], &[i]])
    }

    #[test]
    fn merkle_matches_rfc6962_shape() {
        let l: Vec<[u8; 32]> = (0..5).map(leaf).collect();
        let node = |a: [u8; 32], b: [u8; 32]| sha256(&[&[1], &a, &b]);
        // n = 5: k = 4 → (((0,1),(2,3)),4)
        let expected = node(node(node(l[0], l[1]), node(l[2], l[3])), l[4]);
        assert_eq!(merkle_root(&l), expected);
        // n = 3: k = 2 → ((0,1),2)
        assert_eq!(merkle_root(&l[..3]), node(node(l[0], l[1]), l[2]));
        assert_eq!(merkle_root(&[]), sha256(&[]));
    }

    /// The Merkle tree hash test vectors of certificate-transparency's reference test data
    /// (`python/ct/crypto/merkle_test.py`, `go/merkle/log_verifier_test.go`): eight leaf inputs
    /// and MTH(D[n]) for n = 0..=8. Leaves are hashed here as RFC 6962 hashes them,
    /// SHA-256(0x00 ‖ input); a row leaf carries that 0x00 prefix itself.
    #[test]
    fn merkle_root_matches_the_rfc6962_test_vectors() {
        let inputs: [&[u8]; 8] = [
            b"",
            &[0x00],
            &[0x10],
            &[0x20, 0x21],
            &[0x30, 0x31],
            &[0x40, 0x41, 0x42, 0x43],
            &[0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57],
            &[
                0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d,
                0x6e, 0x6f,
            ],
        ];
        let roots = [
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ];
        let leaves: Vec<[u8; 32]> = inputs.iter().map(|d| sha256(&[&[0x00], d])).collect();
        for (n, root) in roots.iter().enumerate() {
            assert_eq!(
                hex::encode(merkle_root(&leaves[..n])),
                *root,
                "MTH of {n} leaves"
            );
        }
        // The chunked form the writer uses agrees at every size.
        assert_eq!(merkle_root(&chunk_roots(&leaves)), merkle_root(&leaves));
    }

    #[test]
    fn canonical_bytes_are_as_documented() {
        let mut buf = Vec::new();
        put(&mut buf, TAG_TEXT, Some(b"ab"));
        put(&mut buf, TAG_INT, None);
        assert_eq!(buf, [3, 0, 0, 0, 0, 2, b'a', b'b', 1, 1, 0, 0, 0, 0]);
    }
}
