//! A test CA and server certificates made by `openssl` (Debian's package; tests/run-all.sh
//! installs it), for the tests of the TLS alert outputs (syslog over TLS, mail's STARTTLS).
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Stdio};

/// Run `openssl ARGS` in `dir`; it must succeed.
pub fn openssl(dir: &Path, args: &[&str]) {
    let status = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl (Debian package openssl; tests/run-all.sh installs it)");
    assert!(status.success(), "openssl {args:?} failed");
}

/// A test CA (`ca.pem`) and, signed by it, a server certificate `NAME.pem`/`NAME.key` for the
/// subject alternative names `sans` (`DNS:localhost,IP:127.0.0.1`).
pub fn make_ca(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=secpipe test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
    );
}

pub fn make_server_cert(dir: &Path, name: &str, sans: &str) {
    let ext = format!("{name}.ext");
    std::fs::write(
        dir.join(&ext),
        format!(
            "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName={sans}\n"
        ),
    )
    .expect("write extensions");
    let (key, csr, pem) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.pem"),
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
            &key,
            "-out",
            &csr,
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            &ext,
            "-out",
            &pem,
        ],
    );
}
