"""The README stays true: its first API example runs as written, and the
names it mentions exist."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import ringcast

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, re.S)


def test_the_api_in_brief_runs_as_written(ring_dir):
    first = BLOCKS[0]
    assert "Publisher.create" in first and "Subscriber.attach" in first
    done = subprocess.run(
        [sys.executable, "-c", first],
        capture_output=True,
        text=True,
        timeout=60,
        env={"RINGCAST_DIR": ring_dir, "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert ringcast.list_rings(ring_dir) == []


def test_every_exception_the_readme_names_exists():
    errors = r"Errors are exceptions under `ringcast.RingError`, each saying.*?:(.*?)\."
    listed = re.search(errors, README, re.S)
    assert listed
    names = re.findall(r"`(\w+)`", listed.group(1))
    assert len(names) > 20
    for name in names:
        assert issubclass(getattr(ringcast, name), ringcast.RingError), name


def test_keyword_arguments_shown_are_accepted():
    # Spot checks of calls the README shows with keywords.
    assert "time=due_ns" in README
    assert 'huge_page_size="2M"' in README and '"1G" pages too' not in README
    assert "../shared" not in README
