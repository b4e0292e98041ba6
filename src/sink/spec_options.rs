//! A sink's optional settings written in its `--alerts` URL (`smtp://host:587?from=a@b&to=c@d`,
//! `syslog+tls://host:6514?ca_file=/etc/ca.pem`): the query is read into the same
//! `…Options` struct that a `secpipe.toml` table fills, so both spellings accept the same keys
//! and refuse the same mistakes (an unknown key names itself).
//!
//! Every value is a string; a key given twice becomes a list (`to=a@x&to=b@x`), which a field
//! that takes one value refuses.

use serde::de::DeserializeOwned;

/// Split `spec` at its first `?`: the part before and the decoded options after (the
/// defaults when there is no query). An error says what is wrong, not where (the caller names
/// the SPEC).
///
/// ```
/// use secpipe::sink::spec_options::split;
/// #[derive(serde::Deserialize, Default, Debug, PartialEq)]
/// #[serde(deny_unknown_fields)]
/// struct O {
///     from: Option<String>,
///     #[serde(default, deserialize_with = "secpipe::sink::spec_options::one_or_many")]
///     to: Vec<String>,
/// }
/// let (rest, o) = split::<O>("smtp://h:25?from=a%40x&to=b@x&to=c@x").unwrap();
/// assert_eq!(rest, "smtp://h:25");
/// assert_eq!(o, O { from: Some("a@x".into()), to: vec!["b@x".into(), "c@x".into()] });
/// let bad = split::<O>("smtp://h:25?form=a@x").unwrap_err();
/// assert!(bad.contains("unknown field `form`"), "{bad}");
/// ```
pub fn split<T: DeserializeOwned + Default>(spec: &str) -> Result<(&str, T), String> {
    let Some((rest, query)) = spec.split_once('?') else {
        return Ok((spec, T::default()));
    };
    let mut table = toml::Table::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let (key, value) = (decode(key)?, decode(value)?);
        let value = toml::Value::String(value);
        match table.get_mut(&key) {
            None => {
                table.insert(key, value);
            }
            Some(toml::Value::Array(list)) => list.push(value),
            Some(first) => {
                let first = std::mem::replace(first, toml::Value::Boolean(false));
                table.insert(key, toml::Value::Array(vec![first, value]));
            }
        }
    }
    let options =
        T::deserialize(toml::Value::Table(table)).map_err(|e| e.to_string().trim().to_string())?;
    Ok((rest, options))
}

/// For a list field: one value (`to=a@x`, `to = "a@x"`) or several (`to = ["a@x", "b@x"]`).
pub fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match serde::Deserialize::deserialize(d)? {
        OneOrMany::One(one) => vec![one],
        OneOrMany::Many(many) => many,
    })
}

/// Percent-decoding (`%40` is `@`); the result must be UTF-8.
pub fn decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("{text}: a `%` must be followed by two hex digits"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{text}: not UTF-8 once decoded"))
}
