#!/usr/bin/env python3
"""Render a VM's node config from a template of conf/: same settings, the VM's addresses.

Used by provision.sh with the system Python (3.11+, stdlib only). Keys that name an address
or a path are replaced; every other setting of the template is kept, in the template's form.
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from typing import Any

HTTP_PORT, RAFT_PORT, WORKER_PORT = 8080, 9090, 9191


def toml_value(value: Any) -> str:
    """One TOML value; JSON string escapes are valid TOML basic-string escapes."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as a TOML value")


def dump(doc: dict[str, Any], prefix: str = "") -> str:
    """A TOML document: plain keys first, then one table per nested mapping."""
    lines = [f"{json.dumps(k)} = {toml_value(v)}" for k, v in doc.items()
             if not isinstance(v, dict)]
    for key, value in doc.items():
        if isinstance(value, dict):
            name = f"{prefix}{json.dumps(key)}"
            lines += ["", f"[{name}]", dump(value, name + ".").rstrip("\n")]
    return "\n".join(lines) + "\n"


def render(template: dict[str, Any], node_id: str, addresses: dict[str, str],
           data_dir: str, secure_dir: str = "", insecure: bool = False,
           join: str = "") -> dict[str, Any]:
    """The template with this node's id, data directory, addresses and peer keys folder
    (``secure_dir``), or ``insecure`` when the cluster runs without keys. With ``join`` (a
    member's HTTP URL) the node joins a running cluster: its peers are itself alone, and it
    waits for ``dqueue-cli cluster add`` (docs/operations.md, "Adding a member")."""
    if node_id not in addresses:
        raise ValueError(f"--addresses has no address for node {node_id!r}")
    if join:
        addresses = {node_id: addresses[node_id]}
    doc = dict(template)
    # HTTP on every interface (the host reaches it by the private address or a forwarded
    # port); the peer transport on the private network only.
    doc.update(id=node_id, data_dir=data_dir, http_addr=f"0.0.0.0:{HTTP_PORT}",
               raft_addr=f"{addresses[node_id]}:{RAFT_PORT}",
               worker_addr=f"0.0.0.0:{WORKER_PORT}",
               peers={n: f"{ip}:{RAFT_PORT}" for n, ip in addresses.items()},
               peers_http={n: f"{ip}:{HTTP_PORT}" for n, ip in addresses.items()})
    doc.pop("secure_dir", None)
    doc.pop("insecure", None)
    doc.pop("join", None)
    if join:
        doc.pop("bootstrap", None)
        doc["join"] = join
    if secure_dir:
        doc["secure_dir"] = secure_dir
    elif insecure:
        doc["insecure"] = True
    return doc


def parse_addresses(text: str) -> dict[str, str]:
    """``n1=192.168.56.11,n2=...`` to a mapping, refusing repeats and blanks."""
    out: dict[str, str] = {}
    for item in text.split(","):
        node, sep, ip = item.strip().partition("=")
        if not sep or not node or not ip or node in out:
            raise ValueError(f"--addresses: bad item {item!r} (want id=ipv4, ids unique)")
        out[node] = ip
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line of the renderer."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--template", help="a node config of conf/ to start from (optional)")
    parser.add_argument("--id", required=True)
    parser.add_argument("--addresses", required=True, help="n1=ip,n2=ip,n3=ip")
    parser.add_argument("--data-dir", default="/var/lib/dqueue")
    parser.add_argument("--join", default="", metavar="URL",
                        help="join the running cluster at this member's HTTP URL")
    keys = parser.add_mutually_exclusive_group()
    keys.add_argument("--secure-dir", default="", help="the node's peer keys folder")
    keys.add_argument("--insecure", action="store_true", help="no peer keys (insecure = true)")
    args = parser.parse_args(argv)
    template: dict[str, Any] = {}
    if args.template:
        with open(args.template, "rb") as handle:
            template = tomllib.load(handle)
    try:
        doc = render(template, args.id, parse_addresses(args.addresses), args.data_dir,
                     args.secure_dir, args.insecure, args.join)
    except ValueError as exc:
        print(f"render_config: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(f"# dqueue node {args.id}, rendered by vagrant/provision.sh\n" + dump(doc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
