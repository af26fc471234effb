"""The API process of a node: the HTTP API (Falcon on waitress) and the ZeroMQ worker gateway.

- ``app``: ``create_app(raft_client_factory, config, registry)``, the routes and their wiring;
- ``tasks``, ``dlq``, ``status``: the resources; ``validation``, ``errors``, ``render``: their
  input checks, error answers and output;
- ``coalesce``: concurrent enqueues sharing one Raft command; ``raft_link``: one Raft client
  per thread; ``metrics``: Prometheus metrics and the Raft process's figures;
- ``openapi``: the OpenAPI document; ``server``: waitress and the graceful drain;
- ``gateway``: the worker gateway; ``__main__``: the process entry point.
"""
