"""The protocol of every ZeroMQ channel of dqueue, in one package.

- ``wire``: the framing ``[version, kind, body]`` shared by every channel.
- ``frames``: non-blocking multipart send and receive with plain integer flags.
- ``zap``: the ZAP handler and the one admit/refuse rule of the peer port and the gateway.

It imports neither ``dqueue.node`` nor ``dqueue.api``: the node, the API, the client and the
worker all import it.
"""
