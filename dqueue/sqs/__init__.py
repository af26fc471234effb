"""The SQS protocol layer (issue 15): pure parsing, validation and rendering, no I/O.

Each module has one job: ``requests`` reads an SQS request (JSON or Query protocol) into an
action and a parameter dict in the JSON protocol's shape; ``responses`` renders results;
``errors`` holds SQS's error codes and renders them; ``md5`` computes the digests SQS clients
verify; ``sigv4`` checks AWS Signature Version 4; ``names`` builds and parses queue URLs, ARNs
and receipt handles; ``attributes`` maps queue attributes to dqueue queue settings. The wiring
to the node is elsewhere (docs/sqs.md says what is wired).
"""
