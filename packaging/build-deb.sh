#!/usr/bin/env bash
# Builds the Debian package of secpipe from this repository:
#   packaging/build-deb.sh            -> $CARGO_TARGET_DIR/debian/secpipe_<version>-1_<arch>.deb
# SECPIPE_DEB_PROFILE=dev packages the debug build instead, and SECPIPE_DEB_BINARY=PATH a binary
# already built (tests/package_install.rs passes the one cargo test built, so that CI tests the
# package without another build of everything).
# It holds the release binary (debug info stripped), the systemd unit, the default config
# (a conffile), man pages and bash/zsh/fish completions made from the clap definitions
# (packaging/gen_docs.rs), README and copyright, and the blocking drop-in as an example.
#
# dpkg-deb rather than cargo-deb: dpkg-deb is on every Debian machine, so CI needs no extra
# `cargo install cargo-deb` (a compile of its own on CI's 2 cores), and the maintainer scripts
# below are the few lines debhelper would write, in plain view.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-$PWD/target}"

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
[ -n "$version" ] || { echo "build-deb: no version in Cargo.toml" >&2; exit 2; }
arch=$(dpkg --print-architecture)
deb_version="${version}-1"
out="$target/debian"
stage="$out/secpipe_${deb_version}_${arch}"
# Reproducible file times: the last commit's, when there is git.
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}"

profile="${SECPIPE_DEB_PROFILE:-release}"
case "$profile" in
    release) profile_dir=release ;;
    dev) profile_dir=debug ;;
    *) echo "build-deb: SECPIPE_DEB_PROFILE is release or dev, not $profile" >&2; exit 2 ;;
esac

binary="${SECPIPE_DEB_BINARY:-}"
if [ -z "$binary" ]; then
    cargo build --profile "$profile" --locked --bin secpipe
    binary="$target/$profile_dir/secpipe"
fi
rm -rf "$stage" "$out/gen"
# The generator always runs from the dev build: its output does not depend on the profile, and
# with the dev-dependencies it needs, a release build of it would recompile half the crates.
cargo run --profile dev --locked --quiet --example gen-docs -- "$out/gen"

install -D -m 0755 "$binary" "$stage/usr/bin/secpipe"
# The release profile keeps line tables (debug = 1) for profiling; the package does not need them.
strip --strip-debug "$stage/usr/bin/secpipe"
install -D -m 0644 packaging/secpipe.service "$stage/lib/systemd/system/secpipe.service"
install -D -m 0644 packaging/secpipe.toml "$stage/etc/secpipe/secpipe.toml"
install -d "$stage/usr/share/man/man1"
for page in "$out"/gen/man/*.1; do
    gzip -9n < "$page" > "$stage/usr/share/man/man1/$(basename "$page").gz"
done
chmod 0644 "$stage"/usr/share/man/man1/*.gz
install -D -m 0644 "$out/gen/completions/secpipe.bash" "$stage/usr/share/bash-completion/completions/secpipe"
install -D -m 0644 "$out/gen/completions/_secpipe" "$stage/usr/share/zsh/vendor-completions/_secpipe"
install -D -m 0644 "$out/gen/completions/secpipe.fish" "$stage/usr/share/fish/vendor_completions.d/secpipe.fish"
doc="$stage/usr/share/doc/secpipe"
install -D -m 0644 README.md "$doc/README.md"
install -D -m 0644 packaging/blocking.conf "$doc/examples/blocking.conf"
cat > "$doc/copyright" <<COPYRIGHT
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: secpipe

Files: *
License: Apache-2.0
 On Debian systems the full text of the Apache License 2.0 is in
 /usr/share/common-licenses/Apache-2.0.
COPYRIGHT
chmod 0644 "$doc/copyright"

# Shared-library dependencies as dpkg computes them for any package (it wants a debian/control).
shlibs=$(cd "$out" && mkdir -p shlibs/debian && printf 'Source: secpipe\n\nPackage: secpipe\nArchitecture: any\n' > shlibs/debian/control &&
    cd shlibs && dpkg-shlibdeps -O "$stage/usr/bin/secpipe" | sed -n 's/^shlibs:Depends=//p')
installed_kib=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)

install -d -m 0755 "$stage/DEBIAN"
cat > "$stage/DEBIAN/control" <<CONTROL
Package: secpipe
Version: $deb_version
Architecture: $arch
Maintainer: secpipe developers <secpipe@localhost>
Installed-Size: $installed_kib
Depends: $shlibs
Recommends: systemd
Suggests: nftables
Section: admin
Priority: optional
Description: security log-stream pipeline
 secpipe reads log lines (the journal, files, syslog), parses and classifies
 them, detects attacks in event-time windows, sends alerts, can ban attackers
 in nftables, and writes a tamper-evident Parquet archive with a signed audit
 chain. The package runs it as a hardened systemd service (secpipe.service).
CONTROL
echo /etc/secpipe/secpipe.toml > "$stage/DEBIAN/conffiles"

# Maintainer scripts: what dh_installsystemd generates, so the unit is enabled and started on
# install like any Debian service, restarted on upgrade, stopped on removal. A failed start
# does not fail the install (the admin reads `systemctl status secpipe`). Purge keeps
# /var/lib/secpipe: it may hold an evidence archive, which only its owner should delete.
cat > "$stage/DEBIAN/postinst" <<'POSTINST'
#!/bin/sh
set -e
if [ "$1" = configure ] || [ "$1" = abort-upgrade ] || [ "$1" = abort-deconfigure ] || [ "$1" = abort-remove ]; then
    if command -v deb-systemd-helper >/dev/null; then
        if deb-systemd-helper debian-installed secpipe.service; then
            deb-systemd-helper update-state secpipe.service >/dev/null || true
        else
            deb-systemd-helper enable secpipe.service >/dev/null || true
        fi
    fi
    if [ -d /run/systemd/system ]; then
        systemctl --system daemon-reload >/dev/null || true
        if [ -n "$2" ]; then action=restart; else action=start; fi
        deb-systemd-invoke "$action" secpipe.service >/dev/null || true
    fi
fi
POSTINST
cat > "$stage/DEBIAN/prerm" <<'PRERM'
#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
    deb-systemd-invoke stop secpipe.service >/dev/null || true
fi
PRERM
cat > "$stage/DEBIAN/postrm" <<'POSTRM'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload >/dev/null || true
fi
if command -v deb-systemd-helper >/dev/null; then
    if [ "$1" = remove ]; then
        deb-systemd-helper mask secpipe.service >/dev/null || true
    fi
    if [ "$1" = purge ]; then
        deb-systemd-helper purge secpipe.service >/dev/null || true
        deb-systemd-helper unmask secpipe.service >/dev/null || true
    fi
fi
POSTRM
chmod 0755 "$stage/DEBIAN/postinst" "$stage/DEBIAN/prerm" "$stage/DEBIAN/postrm"

find "$stage" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
deb="$out/secpipe_${deb_version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "$deb"
