//! What happened to the rows of a file whose bytes no longer match its manifest: decode it,
//! recompute its row leaves, and compare its seqs with the sealed range (`inserted`,
//! `deleted`, `reordered`) or, seqs intact, narrow the changed row down to its chunk
//! (`modified`).

use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::ProblemClass;
use crate::archive::canonical::{CHUNK_ROWS, chunk_roots, conform, leaves_of, merkle_root};
use crate::archive::schema::Table;
use crate::archive::store::ObjectReader;

/// Class, (row, last row of the range when only a range is known), seq, detail.
pub(super) type Diagnosis = (
    ProblemClass,
    (Option<u64>, Option<u64>),
    Option<u64>,
    String,
);

fn modified(detail: String) -> Diagnosis {
    (ProblemClass::Modified, (None, None), None, detail)
}

/// A changed file, decoded: the seq and leaf of every row, and the chunk roots its metadata
/// claims.
struct Decoded {
    seqs: Vec<i64>,
    leaves: Vec<[u8; 32]>,
    stored_chunk_roots: Option<Vec<[u8; 32]>>,
}

/// Decode a file whose bytes changed and say what happened to its rows.
pub(super) fn diagnose(
    object: &ObjectReader,
    table: Table,
    archive_id: [u8; 16],
    (first_seq, count): (u64, u64),
    row_root: Option<&str>,
) -> Diagnosis {
    let decoded = match decode(object, table, archive_id) {
        Ok(decoded) => decoded,
        Err(diagnosis) => return diagnosis,
    };
    let root = hex::encode(merkle_root(&decoded.leaves));
    if Some(root.as_str()) == row_root && decoded.seqs.len() as u64 == count {
        return modified(
            "file bytes differ from the sealed file but every row matches its leaf: the file was \
             re-encoded or its metadata edited"
                .into(),
        );
    }
    let mut diagnosis = classify_seqs(&decoded.seqs, first_seq, count);
    if diagnosis.0 == ProblemClass::Modified {
        narrow_to_chunk(&mut diagnosis, &decoded, (first_seq, count), row_root);
    }
    diagnosis
}

/// Every row's seq and leaf, or why the file cannot be decoded (then it is `modified`).
fn decode(object: &ObjectReader, table: Table, archive_id: [u8; 16]) -> Result<Decoded, Diagnosis> {
    let bytes = object
        .read_all()
        .map_err(|e| modified(format!("file bytes differ and it cannot be read: {e}")))?;
    let not_parquet = |e| {
        modified(format!(
            "file bytes differ and it is not readable Parquet: {e}"
        ))
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(not_parquet)?;
    let stored_chunk_roots = stored_chunk_roots(builder.metadata());
    let reader = builder.build().map_err(not_parquet)?;
    let schema = table.schema();
    let mut decoded = Decoded {
        seqs: Vec::new(),
        leaves: Vec::new(),
        stored_chunk_roots,
    };
    for batch in reader {
        let batch = batch
            .map_err(|e| modified(format!("file bytes differ and a page does not decode: {e}")))?;
        let (seqs, leaves) = conform(&batch, &schema)
            .and_then(|columns| leaves_of(&archive_id, &columns))
            .map_err(|e| {
                modified(format!(
                    "file bytes differ and its rows do not fit the schema: {}",
                    e.0
                ))
            })?;
        decoded.seqs.extend(seqs);
        decoded.leaves.extend(leaves);
    }
    Ok(decoded)
}

/// Seqs intact: narrow the changed row down with the chunk roots stored in the file, if they
/// are still there and authentic (their Merkle root is the sealed row_root).
fn narrow_to_chunk(
    diagnosis: &mut Diagnosis,
    decoded: &Decoded,
    (first_seq, count): (u64, u64),
    row_root: Option<&str>,
) {
    let Some(stored) = &decoded.stored_chunk_roots else {
        return;
    };
    if Some(hex::encode(merkle_root(stored)).as_str()) != row_root {
        return;
    }
    let recomputed = chunk_roots(&decoded.leaves);
    if let Some(chunk) = stored.iter().zip(&recomputed).position(|(a, b)| a != b) {
        let start = (chunk * CHUNK_ROWS) as u64;
        let end = (start + CHUNK_ROWS as u64).min(count) - 1;
        diagnosis.1 = (Some(start), Some(end));
        diagnosis.2 = Some(first_seq + start);
        diagnosis.3 = format!(
            "all {count} seqs are present and in order, but a row in rows {start}..={end} \
             (seqs {}..={}) was changed",
            first_seq + start,
            first_seq + end
        );
    }
}

/// The `secpipe.chunk_roots` key-value metadata of a file, decoded.
fn stored_chunk_roots(
    metadata: &parquet::file::metadata::ParquetMetaData,
) -> Option<Vec<[u8; 32]>> {
    use base64::Engine;
    let kv = metadata.file_metadata().key_value_metadata()?;
    let text = kv
        .iter()
        .find(|e| e.key == "secpipe.chunk_roots")?
        .value
        .as_deref()?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()?;
    if bytes.len() % 32 != 0 {
        return None;
    }
    Some(
        bytes
            .chunks_exact(32)
            .filter_map(|c| <[u8; 32]>::try_from(c).ok())
            .collect(),
    )
}

/// Compare decoded seqs with the sealed range `first_seq .. first_seq + count`.
fn classify_seqs(seqs: &[i64], first_seq: u64, count: u64) -> Diagnosis {
    let in_range = |s: i64| {
        u64::try_from(s)
            .ok()
            .filter(|s| *s >= first_seq && *s - first_seq < count)
            .map(|s| (s - first_seq) as usize)
    };
    let mut seen = vec![false; usize::try_from(count).unwrap_or(0)];
    for (row, s) in seqs.iter().enumerate() {
        match in_range(*s) {
            Some(i) if !seen[i] => seen[i] = true,
            _ => {
                return (
                    ProblemClass::Inserted,
                    (Some(row as u64), None),
                    u64::try_from(*s).ok(),
                    format!(
                        "row {row} has seq {s}, which is outside the sealed range \
                         {first_seq}..{} or repeated",
                        first_seq + count
                    ),
                );
            }
        }
    }
    if let Some(missing) = seen.iter().position(|s| !s) {
        let seq = first_seq + missing as u64;
        let row = seqs
            .iter()
            .position(|s| u64::try_from(*s).map(|s| s > seq).unwrap_or(false))
            .unwrap_or(seqs.len());
        return (
            ProblemClass::Deleted,
            (Some(row as u64), None),
            Some(seq),
            format!(
                "seq {seq} was sealed in this file and is gone ({} rows of {count} remain)",
                seqs.len()
            ),
        );
    }
    for (row, s) in seqs.iter().enumerate() {
        let expected = first_seq + row as u64;
        if u64::try_from(*s).ok() != Some(expected) {
            return (
                ProblemClass::Reordered,
                (Some(row as u64), None),
                u64::try_from(*s).ok(),
                format!(
                    "row {row} holds seq {s} where seq {expected} was sealed: rows were reordered"
                ),
            );
        }
    }
    (
        ProblemClass::Modified,
        (None, None),
        None,
        format!(
            "all {count} seqs are present and in order but the rows do not hash to the sealed \
             row_root: row content was changed"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_classes() {
        assert_eq!(classify_seqs(&[0, 1, 2], 0, 3).0, ProblemClass::Modified);
        let (class, (row, _), seq, _) = classify_seqs(&[0, 2], 0, 3);
        assert_eq!((class, row, seq), (ProblemClass::Deleted, Some(1), Some(1)));
        let (class, (row, _), _, _) = classify_seqs(&[0, 1, 1, 2], 0, 3);
        assert_eq!((class, row), (ProblemClass::Inserted, Some(2)));
        let (class, (row, _), _, _) = classify_seqs(&[0, 2, 1], 0, 3);
        assert_eq!((class, row), (ProblemClass::Reordered, Some(1)));
        let (class, (row, _), _, _) = classify_seqs(&[5, 0, 1, 2], 0, 3);
        assert_eq!((class, row), (ProblemClass::Inserted, Some(0)));
    }
}
