"""The entry point refuses a bad --config-json before touching anything."""

from __future__ import annotations

import pytest

from dqueue.node.__main__ import EXIT_BAD_CONFIG, main


@pytest.mark.parametrize("text", ["{", "[]", '{"id": "n1", "no_such_field": 1}', '{}'])
def test_bad_config_json_exits_1(text, capsys):
    assert main(["--config-json", text]) == EXIT_BAD_CONFIG
    assert "bad --config-json" in capsys.readouterr().err
