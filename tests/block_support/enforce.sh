#!/usr/bin/env bash
# Run by tests/block_nft.rs inside `unshare -n` (a private network namespace: nothing here
# touches the host's firewall). A child namespace behind a veth pair plays the internet:
# 203.0.113.7 (the attacker) and 198.51.100.7 (a bystander) connect to a listener here.
# Prints `CHECK <name> ok` or `CHECK <name> FAIL …` per step; the test reads them.
# Env: SECPIPE (binary), WORK (a temporary directory).
set -u
cd "$WORK"
check() { if [ "$2" = 0 ]; then echo "CHECK $1 ok"; else echo "CHECK $1 FAIL ${3:-}"; fi; }
PORT=18022

ip link set lo up
unshare -n sleep 600 & CHILD=$!
sleep 0.2
ip link add sp0 type veth peer name sp1 netns "$CHILD"
ip addr add 203.0.113.1/24 dev sp0
ip addr add 198.51.100.1/24 dev sp0
ip -6 addr add 2001:db8:ffff::1/64 dev sp0 nodad
ip link set sp0 up
ip -6 route add 2001:db8:1::/64 dev sp0
ip -6 route add 2001:db8:2::/64 dev sp0
# The IPv6 attacker rotates inside its /64 (2001:db8:1::7, ::8); 2001:db8:2::7 is someone else.
nsenter -t "$CHILD" -n sh -c 'ip link set lo up; ip addr add 203.0.113.7/24 dev sp1;
    ip addr add 198.51.100.7/24 dev sp1;
    for a in 2001:db8:1::7 2001:db8:1::8 2001:db8:2::7; do ip -6 addr add $a/128 dev sp1 nodad; done
    ip link set sp1 up; ip -6 route add 2001:db8:ffff::/64 dev sp1'
python3 -c '
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", '"$PORT"')); s.listen(64)
s6 = socket.socket(socket.AF_INET6); s6.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
s6.bind(("::", '"$PORT"')); s6.listen(64)
import threading
def serve(sock):
    while True:
        c, _ = sock.accept(); c.close()
threading.Thread(target=serve, args=(s6,), daemon=True).start()
while True:
    c, _ = s.accept(); c.close()' & LISTENER=$!
cleanup() { kill "$LISTENER" "$CHILD" ${SP:-} 2>/dev/null; }
trap cleanup EXIT

# connect FROM TO: exit 0 when a TCP connection is made within 1 s.
connect() {
    nsenter -t "$CHILD" -n python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET)
s.settimeout(1); s.bind((sys.argv[1], 0))
try:
    s.connect((sys.argv[2], int(sys.argv[3]))); sys.exit(0)
except OSError:
    sys.exit(1)' "$1" "$2" "$PORT"
}
attacker() { connect 203.0.113.7 203.0.113.1; }
bystander() { connect 198.51.100.7 198.51.100.1; }
# until_true N CMD…: try CMD every 0.05 s, at most N times.
until_true() { local n=$1; shift; for _ in $(seq "$n"); do "$@" && return 0; sleep 0.05; done; return 1; }
banned() { nft list set inet secpipe ban4 2>/dev/null | grep -q '203\.0\.113\.7'; }
not_banned() { ! banned; }
has_table() { nft list table inet secpipe >/dev/null 2>&1; }
banned6() { nft list set inet secpipe ban6 2>/dev/null | grep -q '2001:db8:1::/64'; }
not_banned6() { ! banned6; }
# fail N [ADDR]: append N failed sshd logins from the attacker, stamped now (UTC).
LINE=0
fail() {
    local from=${2:-203.0.113.7}
    for _ in $(seq "$1"); do
        LINE=$((LINE + 1))
        echo "$(date -u '+%b %e %H:%M:%S') gw sshd[$((1000 + LINE))]: Failed password for invalid user u$LINE from $from port 4242 ssh2" >> auth.log
    done
}

until_true 100 attacker; check before_attacker_connects $?
until_true 100 bystander; check before_bystander_connects $?

: > auth.log
"$SECPIPE" --follow --tz UTC --lateness 1s --config config.toml --alerts alerts.jsonl \
    --block enforce --state state --block-reconcile 1s auth.log 2> secpipe.err &
SP=$!
until_true 400 has_table; check table_created $?

# Four failures, then the crossing fifth: time from appending it to the kernel element.
fail 4
sleep 1.5
T0=$(date +%s%N)
fail 1
until_true 1200 banned; check banned $?
T1=$(date +%s%N)
echo "LATENCY_MS $(( (T1 - T0) / 1000000 ))"
attacker; check attacker_dropped $(( $? == 0 ))
bystander; check bystander_still_connects $?
nft list set inet secpipe ban4 | grep -q 'timeout 6s'; check kernel_timeout_is_the_rules $?

# The ban (6 s) expires in the kernel by itself.
until_true 400 not_banned; check expired $?
attacker; check attacker_connects_after_expiry $?

# A second ban (escalated: 12 s, capped by max_time 8s), lifted by `secpipe unban`.
sleep 1.2
fail 5
until_true 1200 banned; check banned_again $?
nft list set inet secpipe ban4 | grep -q 'timeout 8s'; check escalated_and_capped $?
"$SECPIPE" bans --state state --json | grep -q '"count":2'; check bans_lists_it $?
"$SECPIPE" unban 203.0.113.7 --state state 2>/dev/null; check unban_ran $?
attacker; check attacker_connects_after_unban $?
[ -z "$("$SECPIPE" bans --state state)" ]; check bans_empty_after_unban $?

# A third ban, then someone flushes the whole ruleset: reconcile restores table and ban.
sleep 1.2
fail 5
until_true 1200 banned; check banned_third $?
nft flush ruleset
has_table; check flushed $(( $? == 0 ))
until_true 400 banned; check restored_after_flush $?
attacker; check attacker_dropped_after_restore $(( $? == 0 ))

# IPv6: the attacker's /64 is banned, its neighbour in the same /64 too, another /64 is not.
until_true 100 connect 2001:db8:1::7 2001:db8:ffff::1; check v6_before $?
fail 5 2001:db8:1::7
until_true 1200 banned6; check v6_banned_as_64 $?
connect 2001:db8:1::8 2001:db8:ffff::1; check v6_same_64_dropped $(( $? == 0 ))
connect 2001:db8:2::7 2001:db8:ffff::1; check v6_other_64_connects $?

# A restart after the firewall was wiped (a reboot, `systemctl restart nftables`): the ledger's
# live bans are back before any new line is read.
kill -TERM "$SP"; wait "$SP" 2>/dev/null
nft flush ruleset
banned6; check wiped_for_restart $(( $? == 0 ))
"$SECPIPE" --follow --tz UTC --lateness 1s --config config.toml --alerts alerts2.jsonl \
    --block enforce --state state --block-reconcile 1s auth.log 2>> secpipe.err &
SP=$!
until_true 400 has_table; check table_after_restart $?
banned6; check restart_reapplies_live_ban $?
connect 2001:db8:1::7 2001:db8:ffff::1; check v6_dropped_after_restart $(( $? == 0 ))

# SIGKILL: nobody is left to unban, the kernel timeout still ends the ban.
kill -9 "$SP"; wait "$SP" 2>/dev/null; SP=
banned6; check still_banned_after_kill $?
until_true 400 not_banned6; check expired_after_kill $?
connect 2001:db8:1::7 2001:db8:ffff::1; check attacker_connects_after_kill_expiry $?
grep -c '"rule":"secpipe.ban"' alerts.jsonl | grep -qx 4; check four_ban_records $?
grep -q '"rule":"secpipe.unban"' alerts.jsonl; check unban_record $?
