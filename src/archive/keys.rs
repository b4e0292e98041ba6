//! Ed25519 keys for signing checkpoints: `secpipe keygen`.
//!
//! Keys are stored as standard PEM (PKCS#8 private key, SubjectPublicKeyInfo public key), so
//! `openssl pkey -in FILE -pubout` agrees with `FILE.pub`. The fingerprint that `keygen` prints
//! for out-of-band pinning is the hex SHA-256 of the 32-byte public key.
//!
//! ```
//! let dir = tempfile::tempdir().unwrap();
//! let key = dir.path().join("archive.key");
//! let fingerprint = secpipe::archive::keys::keygen(&key).unwrap();
//! assert_eq!(fingerprint.len(), 64);
//! assert!(dir.path().join("archive.key.pub").exists());
//! assert!(secpipe::archive::keys::keygen(&key).is_err()); // never overwrites
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

use super::ArchiveError;
use super::canonical::sha256;

/// DER prefix of a PKCS#8 v1 Ed25519 private key; the 32-byte seed follows.
const PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
/// DER prefix of an Ed25519 SubjectPublicKeyInfo; the 32-byte key follows.
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// Generate a key pair: `out` (private, mode 0600) and `out.pub`. Refuses to overwrite either.
/// Returns the public key fingerprint (hex SHA-256 of the public key).
pub fn keygen(out: &Path) -> Result<String, ArchiveError> {
    let pub_path = pub_path(out);
    for path in [out, pub_path.as_path()] {
        if path.exists() {
            return Err(ArchiveError::Other(format!(
                "{} already exists; refusing to overwrite a key (choose another --out)",
                path.display()
            )));
        }
    }
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)
        .map_err(|e| ArchiveError::Other(format!("no randomness for a key: {e}")))?;
    let signing = SigningKey::from_bytes(&seed);
    let verifying = signing.verifying_key();

    let private_pem = pem("PRIVATE KEY", &[&PKCS8_PREFIX[..], &seed].concat());
    write_new(out, private_pem.as_bytes(), 0o600)?;
    let public_pem = pem(
        "PUBLIC KEY",
        &[&SPKI_PREFIX[..], &verifying.to_bytes()].concat(),
    );
    write_new(&pub_path, public_pem.as_bytes(), 0o644)?;
    Ok(fingerprint(&verifying))
}

/// `FILE.pub` for `FILE`.
pub fn pub_path(private: &Path) -> PathBuf {
    let mut name = private.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

/// Hex SHA-256 of the public key bytes.
pub fn fingerprint(key: &VerifyingKey) -> String {
    hex::encode(sha256(&[&key.to_bytes()]))
}

/// The key hash on a checkpoint signature line: the first 16 hex digits of the fingerprint.
pub fn keyhash(key: &VerifyingKey) -> String {
    fingerprint(key)[..16].to_owned()
}

/// Read a private key written by [`keygen`].
pub fn load_signing_key(path: &Path) -> Result<SigningKey, ArchiveError> {
    let der = read_pem(path, "PRIVATE KEY")?;
    let seed = der
        .strip_prefix(&PKCS8_PREFIX[..])
        .and_then(|rest| <[u8; 32]>::try_from(rest).ok())
        .ok_or_else(|| bad_key(path, "not an Ed25519 PKCS#8 private key"))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Read a public key written by [`keygen`] (`FILE.pub`).
pub fn load_verifying_key(path: &Path) -> Result<VerifyingKey, ArchiveError> {
    let der = read_pem(path, "PUBLIC KEY")?;
    let bytes = der
        .strip_prefix(&SPKI_PREFIX[..])
        .and_then(|rest| <[u8; 32]>::try_from(rest).ok())
        .ok_or_else(|| bad_key(path, "not an Ed25519 public key"))?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| bad_key(path, &e.to_string()))
}

/// Base64 signature of `message`.
pub fn sign(key: &SigningKey, message: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(key.sign(message).to_bytes())
}

/// Check a base64 signature of `message`.
pub fn check(key: &VerifyingKey, message: &[u8], signature_b64: &str) -> bool {
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(signature_b64) else {
        return false;
    };
    let Ok(signature) = Signature::from_slice(&bytes) else {
        return false;
    };
    key.verify(message, &signature).is_ok()
}

fn bad_key(path: &Path, why: &str) -> ArchiveError {
    ArchiveError::Other(format!(
        "{}: {why} (make one with `secpipe keygen --out FILE`)",
        path.display()
    ))
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    format!("-----BEGIN {label}-----\n{body}\n-----END {label}-----\n")
}

fn read_pem(path: &Path, label: &str) -> Result<Vec<u8>, ArchiveError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ArchiveError::Other(format!("{}: {e}", path.display())))?;
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text
        .find(&begin)
        .ok_or_else(|| bad_key(path, &format!("no `{begin}` line")))?;
    let body_and_rest = &text[start + begin.len()..];
    let stop = body_and_rest
        .find(&end)
        .ok_or_else(|| bad_key(path, &format!("no `{end}` line")))?;
    let body: String = body_and_rest[..stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|e| bad_key(path, &format!("bad base64: {e}")))
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), ArchiveError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options
        .open(path)
        .map_err(|e| ArchiveError::Other(format!("{}: {e}", path.display())))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_sign() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let fp = keygen(&path).unwrap();
        let signing = load_signing_key(&path).unwrap();
        let verifying = load_verifying_key(&pub_path(&path)).unwrap();
        assert_eq!(fingerprint(&verifying), fp);
        let sig = sign(&signing, b"hello");
        assert!(check(&verifying, b"hello", &sig));
        assert!(!check(&verifying, b"hellO", &sig));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
