"""`routing ui`: a routing playground in the browser, on the embedded broker or a live RabbitMQ.

The page draws a topology (`layout`), publishes with the `explain` trace lit on the drawing,
and shows queue depths live; a `Playground` is all of it without HTTP, `create_app` its
FastAPI app (the `ui` extra: `pip install 'routing[ui]'`).
"""

from __future__ import annotations

from routing.ui._app import create_app
from routing.ui._demos import DEMOS
from routing.ui._layout import Drawing, layout
from routing.ui._playground import Playground, parse_headers

__all__ = ["DEMOS", "Drawing", "Playground", "create_app", "layout", "parse_headers"]
