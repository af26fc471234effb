"""The protocol of every ZeroMQ channel of dqueue, in one package.

- ``wire``: the framing ``[version, kind, body]`` shared by every channel.

It imports neither ``dqueue.node`` nor ``dqueue.api``: the node, the API, the client and the
worker all import it.
"""
