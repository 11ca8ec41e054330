"""The inbound HTTP server of a worker: SSE live feed, dashboard, health and metrics.

(Requests the worker makes go through ``consumers.outbound``.)

``HttpServer`` runs it in the caller's event loop; ``create_app`` builds the
Starlette app alone (for embedding or tests).
"""

from .app import create_app
from .auth import Principal, TokenAuth
from .live import LiveFilter, LiveHub, Subscriber
from .server import HttpServer

__all__ = [
    "HttpServer",
    "LiveFilter",
    "LiveHub",
    "Principal",
    "Subscriber",
    "TokenAuth",
    "create_app",
]
