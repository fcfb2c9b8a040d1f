"""``ringcast serve``: runs the rings, feed handlers, book builders and user
stages declared in a TOML file as one supervised, observable service.

``ringcast serve CONFIG.toml [--metrics HOST:PORT]`` (or ``--demo``); see
``docs/serve.md`` for the configuration keys and ``examples/serve/``.
A stage is a function ``def run(ctx: ServiceContext, **args)``.
"""

from __future__ import annotations

import shutil
import tempfile
from typing import Any

from ._child import ServiceContext
from ._config import ConfigError, ServiceConfig, load, parse
from ._supervisor import Supervisor

__all__ = ["ConfigError", "ServiceConfig", "ServiceContext", "Supervisor", "load", "parse", "run"]


def run(
    config: str | None,
    *,
    metrics: tuple[str, int] | None = None,
    check: bool = False,
    demo: dict[str, Any] | None = None,
) -> int:
    """What ``ringcast serve`` does: load and check the configuration (or
    make the demo's), then supervise until SIGTERM/SIGINT. ``check``: only
    print the start order."""
    work = tempfile.mkdtemp(prefix="ringcast-serve-") if demo is not None else None
    try:
        if demo is not None:
            from . import _demo

            cfg = _demo.config(work, **demo)  # type: ignore[arg-type]
        else:
            assert config is not None
            cfg = load(config)
        if check:
            for n, layer in enumerate(cfg.order(), 1):
                print(f"{n}. " + ", ".join(i.id for i in layer))
            return 0
        return Supervisor(cfg, metrics=metrics).run()
    finally:
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
