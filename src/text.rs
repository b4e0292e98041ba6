//! Text helpers for error messages: the one line/column rule every config and grammar error
//! uses, so `file:line:column` means the same wherever secpipe prints it, and the edit distance
//! behind "did you mean" hints.

/// Line and column (both 1-based, the column in characters) of byte `offset` in `text`. An
/// offset past the end means the end; one inside a character backs off to its start, so a bad
/// span cannot panic.
///
/// ```
/// use secpipe::text::line_col;
/// assert_eq!(line_col("ab\ncdé\nx", 0), (1, 1));
/// assert_eq!(line_col("ab\ncdé\nx", 7), (2, 4));
/// assert_eq!(line_col("é", 1), (1, 1));
/// ```
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// Levenshtein distance in characters, for "did you mean" hints on mistyped names.
///
/// ```
/// assert_eq!(secpipe::text::edit_distance("treshold", "threshold"), 1);
/// ```
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (diag + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            diag = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// The most a config file may hold. Rules, destinations and `[run]` fit in kilobytes; the cap
/// only stops `--config /dev/zero` (or a log file named by mistake) from filling memory, three
/// times over, since three loaders read the file.
pub const MAX_CONFIG_BYTES: u64 = 4 << 20;

/// `--config FILE`'s text, at most [`MAX_CONFIG_BYTES`]; errors say `--config FILE: why`.
pub fn read_config_text(path: &std::path::Path) -> Result<String, String> {
    use std::io::Read;
    let shown = path.display();
    let file = std::fs::File::open(path).map_err(|e| format!("--config {shown}: {e}"))?;
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("--config {shown}: {e}"))?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(format!(
            "--config {shown}: more than {} MiB; not a config file?",
            MAX_CONFIG_BYTES >> 20
        ));
    }
    String::from_utf8(bytes).map_err(|e| format!("--config {shown}: not UTF-8 text ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column() {
        assert_eq!(line_col("ab\ncdé\nx", 0), (1, 1));
        assert_eq!(line_col("ab\ncdé\nx", 3), (2, 1));
        assert_eq!(line_col("ab\ncdé\nx", 8), (3, 1));
        assert_eq!(line_col("ab\ncdé\nx", 7), (2, 4));
        assert_eq!(line_col("ab", 99), (1, 3));
        // Inside `é` (bytes 5..7): the column of `é` itself.
        assert_eq!(line_col("ab\ncdé\nx", 6), (2, 3));
    }
}
