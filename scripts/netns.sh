#!/usr/bin/env bash
# Network namespace helpers for partition experiments (see dqueue/chaos/netns.py):
#   scripts/netns.sh check
#   scripts/netns.sh up PREFIX n1 n2 n3 [--subnet 10.77.0]     # one namespace per node + a hub
#   scripts/netns.sh isolate PREFIX n1 n2 n3                   # cut n1 off from everyone
#   scripts/netns.sh cut-peers PREFIX n1 n2 n3                 # cut n1 off from its peers only
#   scripts/netns.sh heal PREFIX n1 n2 n3
#   scripts/netns.sh down PREFIX n1 n2 n3                      # kill what runs inside, delete
# Addresses exist only inside the namespaces; run a command in one with
#   ip netns exec PREFIX-n1 CMD   (or PREFIX-hub for the client side).
source "$(dirname "${BASH_SOURCE[0]}")/../bin/_env.sh"
exec "$DQ_PY" -m dqueue.chaos.netns "$@"
