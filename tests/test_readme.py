"""The README tables are read against the registry: every service, on its port, in both languages."""

import re
from pathlib import Path

import pytest

from services.registry import SERVICES

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("readme", ["README.md", "README.zh-CN.md"])
def test_readme_table_lists_every_service_on_its_port(readme):
    text = (ROOT / readme).read_text()
    rows = dict(re.findall(r"^\| (\w+)\s+\| (\d+) \|", text, flags=re.MULTILINE))
    assert rows == {name: str(spec.port) for name, spec in SERVICES.items()}


@pytest.mark.parametrize("readme", ["README.md", "README.zh-CN.md"])
def test_readme_first_screen_shows_the_two_commands(readme):
    first_screen = "\n".join((ROOT / readme).read_text().splitlines()[:20])
    assert "./scripts/run" in first_screen and "./scripts/test" in first_screen
