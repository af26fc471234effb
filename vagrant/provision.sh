#!/usr/bin/env bash
# Provision one dqueue node: install dqueue from the synced source folder into a virtual
# environment, install the node's peer keys, write its config from conf/, install the systemd
# unit and start it.
#
#   provision.sh [--src DIR] [--root DIR] [--addresses n1=IP,n2=IP,n3=IP] [--conf-dir DIR]
#                [--keys DIR | --insecure] [--join URL] [--no-apt] [--no-systemd] NODE_ID
#
# --keys is this node's folder written by `dqueue-cli keys init` (default /opt/dqueue-keys,
# which the Vagrantfile syncs from vagrant/keys/<id>/): it is installed as /etc/dqueue/keys,
# owner dqueue, secret key 0600. Without keys provisioning fails unless --insecure.
#
# --join URL renders a node that joins the running cluster at that member's HTTP URL instead
# of bootstrapping one (the Vagrantfile's n4); add it with `dqueue-cli cluster add`.
#
# --root installs into another filesystem root (a test or an image build): everything is
# written below it, no user is created and systemd is left alone. Paths written into the files
# are always the ones of the real system (/opt/dqueue, /etc/dqueue, /var/lib/dqueue).
set -euo pipefail

SRC=/opt/dqueue-src
ROOT=/
ADDRESSES="n1=192.168.56.11,n2=192.168.56.12,n3=192.168.56.13"
CONF_DIR=""
KEYS=/opt/dqueue-keys
INSECURE=0
APT=1
SYSTEMD=1
NODE_ID=""
JOIN=""
while [ $# -gt 0 ]; do
    case "$1" in
        --src) SRC="$2"; shift 2 ;;
        --root) ROOT="$2"; shift 2 ;;
        --addresses) ADDRESSES="$2"; shift 2 ;;
        --conf-dir) CONF_DIR="$2"; shift 2 ;;
        --keys) KEYS="$2"; shift 2 ;;
        --insecure) INSECURE=1; shift ;;
        --join) JOIN="$2"; shift 2 ;;
        --no-apt) APT=0; shift ;;
        --no-systemd) SYSTEMD=0; shift ;;
        -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
        -*) echo "provision: unknown option $1" >&2; exit 2 ;;
        *) NODE_ID="$1"; shift ;;
    esac
done
[ -n "$NODE_ID" ] || { echo "provision: NODE_ID is required" >&2; exit 2; }
[ -f "$SRC/pyproject.toml" ] || { echo "provision: no dqueue source in $SRC" >&2; exit 2; }
CONF_DIR="${CONF_DIR:-$SRC/conf/cluster-3}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(mkdir -p "$ROOT" && cd "$ROOT" && pwd)"
R="${ROOT%/}"   # prefix for every path written: empty on a real system
if [ "$ROOT" != "/" ]; then APT=0; SYSTEMD=0; fi
say() { echo "provision[$NODE_ID]: $*"; }

# 1. Python 3.11+ with venv.
if [ "$APT" = 1 ] && ! python3 -c 'import sys, venv, ensurepip; assert sys.version_info >= (3, 11)' 2>/dev/null; then
    say "installing python3 and python3-venv"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q python3 python3-venv
fi
python3 -c 'import sys; assert sys.version_info >= (3, 11), sys.version' \
    || { echo "provision: dqueue needs Python 3.11 or newer" >&2; exit 1; }

# 2. The service user (real system only).
if [ "$ROOT" = "/" ] && ! id dqueue >/dev/null 2>&1; then
    say "creating user dqueue"
    useradd --system --home-dir /var/lib/dqueue --shell /usr/sbin/nologin dqueue
fi

# 3. dqueue in its own virtual environment.
say "installing dqueue from $SRC into $R/opt/dqueue/venv"
mkdir -p "$R/opt/dqueue"
[ -x "$R/opt/dqueue/venv/bin/python" ] || python3 -m venv "$R/opt/dqueue/venv"
# Reinstall only when the source changed since the last provisioning (vagrant provision again).
STAMP="$R/opt/dqueue/venv/.dqueue-src-sha1"
WANT="$(cd "$SRC" && find pyproject.toml dqueue -type f -name '*.py' -o -name pyproject.toml \
        | LC_ALL=C sort | xargs sha1sum | sha1sum | cut -d' ' -f1)"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
    "$R/opt/dqueue/venv/bin/python" -m pip install --quiet --upgrade "$SRC"
    echo "$WANT" > "$STAMP"
else
    say "dqueue already installed from this source"
fi

# 4. The node's peer keys (docs/security.md): its key pair and the members' public keys.
mkdir -p "$R/etc/dqueue" "$R/var/lib/dqueue"
SECURITY=(--insecure)
if [ "$INSECURE" = 0 ]; then
    if [ ! -f "$KEYS/$NODE_ID.key_secret" ] || [ ! -d "$KEYS/members" ]; then
        echo "provision: no peer keys for $NODE_ID in $KEYS: create them on the host with" >&2
        echo "  bin/dqueue-cli keys init vagrant/keys --members n1,n2,n3" >&2
        echo "(the Vagrantfile does it on 'vagrant up'), or pass --insecure" >&2
        exit 1
    fi
    rm -rf "$R/etc/dqueue/keys.new"
    install -d -m 0700 "$R/etc/dqueue/keys.new" "$R/etc/dqueue/keys.new/members" \
        "$R/etc/dqueue/keys.new/workers"
    install -m 0600 "$KEYS/$NODE_ID.key_secret" "$R/etc/dqueue/keys.new/"
    install -m 0644 "$KEYS"/members/*.key "$R/etc/dqueue/keys.new/members/"
    for key in "$KEYS"/workers/*.key; do
        [ -f "$key" ] && install -m 0644 "$key" "$R/etc/dqueue/keys.new/workers/"
    done
    # HTTP bearer tokens (dqueue-cli tokens add NAME --roles ... --secure-dir vagrant/keys/<id>):
    # without them the HTTP port serves loopback clients only (protected mode).
    if [ -f "$KEYS/tokens.json" ]; then
        install -m 0600 "$KEYS/tokens.json" "$R/etc/dqueue/keys.new/"
    fi
    if [ "$ROOT" = "/" ]; then chown -R dqueue:dqueue "$R/etc/dqueue/keys.new"; fi
    # Keep the member marker (dqueue/node/member_marker.py): it outlives a lost data disk.
    for marker in "$R/etc/dqueue/keys"/*.member; do
        [ -f "$marker" ] && cp -p "$marker" "$R/etc/dqueue/keys.new/"
    done
    rm -rf "$R/etc/dqueue/keys"
    mv "$R/etc/dqueue/keys.new" "$R/etc/dqueue/keys"
    SECURITY=(--secure-dir /etc/dqueue/keys)
    say "installed peer keys in $R/etc/dqueue/keys"
else
    say "no peer keys (--insecure): anyone who reaches port 9090 can pose as a member"
fi

# 5. The node's config, from the template of conf/ with this VM's addresses.
TEMPLATE=()
[ -f "$CONF_DIR/$NODE_ID.toml" ] && TEMPLATE=(--template "$CONF_DIR/$NODE_ID.toml")
python3 "$HERE/render_config.py" "${TEMPLATE[@]}" --id "$NODE_ID" --addresses "$ADDRESSES" \
    --data-dir /var/lib/dqueue "${SECURITY[@]}" ${JOIN:+--join "$JOIN"} \
    > "$R/etc/dqueue/node.toml.new"
mv "$R/etc/dqueue/node.toml.new" "$R/etc/dqueue/node.toml"
say "wrote $R/etc/dqueue/node.toml"

# 6. The systemd unit.
mkdir -p "$R/etc/systemd/system"
install -m 0644 "$HERE/dqueue.service" "$R/etc/systemd/system/dqueue.service"
if [ "$ROOT" = "/" ]; then chown -R dqueue:dqueue /var/lib/dqueue; fi
if [ "$SYSTEMD" = 1 ]; then
    systemctl daemon-reload
    systemctl enable dqueue.service
    systemctl restart dqueue.service
    say "dqueue.service started: systemctl status dqueue, journalctl -u dqueue -f"
else
    say "systemd step skipped (unit in $R/etc/systemd/system/dqueue.service)"
fi
