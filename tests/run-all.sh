#!/usr/bin/env bash
# Runs every check secpipe has, on a fresh machine: installs what the tests need, then
# formatting, lints, unit + integration + doc tests. This is the command README names and
# .ci/run calls.
set -euo pipefail
cd "$(dirname "$0")/.."

# Real peers the tests talk to: `logger` (util-linux) sends syslog, `openssl` makes TLS test
# certificates and is the TLS sender; DuckDB and pyarrow read and rewrite the Parquet archive.
if ! command -v logger >/dev/null || ! command -v openssl >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bsdutils openssl
fi
# rsyslog receives the syslog alert sink's RFC 5424 messages and parses their structured data
# (tests/syslog_sink.rs starts its own rsyslogd on loopback ports).
if ! command -v rsyslogd >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rsyslog
fi
# Prometheus Alertmanager receives and deduplicates the Alertmanager sink's alerts
# (tests/alertmanager_sink.rs starts its own on a loopback port).
if ! command -v prometheus-alertmanager >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus-alertmanager
fi
# fail2ban's own sshd/dropbear filters and annotated test logs: tests/fail2ban_sshd.rs scores us on them.
if [ ! -e /usr/lib/python3/dist-packages/fail2ban/tests/files/logs/sshd ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fail2ban
fi
# nftables: tests/block_nft.rs bans addresses with the real `nft` inside `unshare -n` (and fails on CI if it cannot).
if ! command -v nft >/dev/null || ! command -v ip >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nftables iproute2
fi
# Debian's Chromium opens the report page headless (tests/report_html.rs: its DOM and a screenshot).
if ! command -v chromium >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
fi
# cmark-gfm (GitHub's Markdown renderer): tests/report_markdown.rs renders `secpipe report --md` with it.
if ! command -v cmark-gfm >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmark-gfm
fi
# nats-server (JetStream) is the bus of the scale-out: tests/nats_scaleout.rs and
# tests/nats_attacks.rs start their own on loopback ports.
if ! command -v nats-server >/dev/null && [ ! -x /usr/sbin/nats-server ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server
fi
# Packaging (issue 17): tests/systemd_unit.rs scores the unit with systemd-analyze;
# tests/package_install.rs builds the .deb (dpkg-shlibdeps) and installs it in a debootstrapped bookworm.
if ! command -v systemd-analyze >/dev/null || ! command -v debootstrap >/dev/null || ! command -v dpkg-shlibdeps >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd debootstrap dpkg-dev
fi
# systemd-nspawn boots the debootstrapped bookworm with the .deb: tests/service_boot.rs starts secpipe.service under its systemd.
if ! command -v systemd-nspawn >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd-container
fi
# systemd-journal-remote writes real journal files from export streams; tests/journal_source.rs
# reads them with journalctl through `secpipe --journal --journal-dir`.
if [ ! -x /lib/systemd/systemd-journal-remote ] && [ ! -x /usr/lib/systemd/systemd-journal-remote ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd-journal-remote
fi
python3 -m pip install --quiet --disable-pip-version-check duckdb pyarrow
# aiosmtpd is the SMTP server tests/email_sink.rs mails alerts to (tests/peers/smtp_receiver.py).
python3 -m pip install --quiet --disable-pip-version-check aiosmtpd && python3 -c 'import aiosmtpd'
# py-ocsf-models validates `--alert-format ocsf` lines as OCSF Detection Findings (tests/ocsf_alerts.rs).
python3 -m pip install --quiet --disable-pip-version-check py-ocsf-models==0.10.0 && python3 -c 'import py_ocsf_models'
python3 -c 'import duckdb, pyarrow' # fail here, clearly, if the install did not work
# The independent archive verifier (tests/independent_verifier.py) checks Ed25519 with `cryptography`.
python3 -m pip install --quiet --disable-pip-version-check cryptography && python3 -c 'import cryptography'
# Spark reads the archive (tests/archive_spark.rs): pyspark from PyPI on Debian's Java 17.
if ! command -v java >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless
fi
python3 -m pip install --quiet --disable-pip-version-check pyspark==4.3.0 && python3 -c 'import pyspark'
# DuckDB over S3 (tests/archive_duckdb_s3.rs runs tests/peers/duckdb_s3.py against a moto server
# filled with boto3): DuckDB 1.5.5 and its httpfs wheel (the versions must match; there is none
# for the DuckDB the other tests use) in a directory of their own, pytz for its timestamps.
# moto's S3 server (versioning, Object Lock) is also the bucket tests/archive_s3.rs archives into
# with --archive s3:// and tests/archive_s3_tamper.rs tampers with (set up by tests/peers/s3_bucket.py).
python3 -m pip install --quiet --disable-pip-version-check 'moto[server]' boto3 && command -v moto_server >/dev/null
[ -f /opt/secpipe-duckdb-1.5.5/duckdb_extension_httpfs/extensions/v1.5.5/httpfs.duckdb_extension ] ||
    python3 -m pip install --quiet --disable-pip-version-check --target /opt/secpipe-duckdb-1.5.5 \
        duckdb==1.5.5 duckdb-extension-httpfs==1.5.5 pytz
# The public sample logs (Loghub) under ../shared/corpus: CI has them, so there a missing
# corpus is an error, and the corpus tests fail rather than skip (SECPIPE_REQUIRE_CORPUS).
if [ "${CI:-}" = true ]; then
    export SECPIPE_CORPUS="${SECPIPE_CORPUS:-$(cd .. && pwd)/shared/corpus}"
    [ -f "$SECPIPE_CORPUS/loghub/OpenSSH_2k.log" ] || { echo "CI: corpus missing at $SECPIPE_CORPUS" >&2; exit 1; }
    export SECPIPE_REQUIRE_CORPUS=1
fi

cargo fmt --check
cargo clippy --all-targets --locked -- -D warnings
# Every declared dependency is used (issue 12): cargo-machete finds the ones no source names.
command -v cargo-machete >/dev/null || cargo install --locked --quiet cargo-machete@0.9.2
cargo machete
# The docs (the map in src/lib.rs, the module docs) link only to what exists and is public.
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --locked --quiet
cargo test --locked --all-targets
cargo test --locked --doc
