"""Liveness (``/health``) and readiness (``/ready``) probes."""

import logging
from typing import Callable
from typing import Dict

import falcon
from marshmallow import fields

from db.errors import Unavailable
from web.auth import public
from web.openapi import ResponseSchema
from web.validation import validate

log = logging.getLogger(__name__)


class HealthOut(ResponseSchema):
    """The process answers."""

    status = fields.String(metadata={"enum": ["ok"]})


class ReadyOut(ResponseSchema):
    """Each backend's state; ``detail`` names the ones down (with a 503)."""

    status = fields.String(metadata={"enum": ["ok", "down"]})
    backends = fields.Dict(
        keys=fields.String(),
        values=fields.String(metadata={"enum": ["ok", "down"]}),
    )
    detail = fields.String(
        metadata={"description": "only when something is down", "optional": True}
    )


class Health:
    """``GET /health``: the process answers; no backend is touched."""

    @public
    @validate(response=HealthOut(), examples={200: {"status": "ok"}})
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Liveness probe."""
        resp.media = {"status": "ok"}


class Ready:
    """``GET /ready``: every backend answers, else 503 naming the ones that do not.

    Args:
        checks: backend name -> callable that raises Unavailable when it is down.
    """

    def __init__(self, checks: Dict[str, Callable[[], None]]):
        self._checks = checks

    @public
    @validate(
        response=ReadyOut(),
        also={503: ReadyOut()},
        examples={
            200: {
                "status": "ok",
                "backends": {"sql": "ok", "notes": "ok", "collatz": "ok"},
            },
            503: {
                "status": "down",
                "backends": {"sql": "ok", "notes": "ok", "collatz": "down"},
                "detail": "unavailable: collatz",
            },
        },
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Readiness probe: checks every configured backend (503 if one is down)."""
        status = {}
        for name, check in self._checks.items():
            try:
                check()
            except Unavailable as ex:
                log.warning("readiness: %s is down: %s", name, ex.detail)
                status[name] = "down"
            else:
                status[name] = "ok"
        down = sorted(name for name, state in status.items() if state != "ok")
        resp.media = {"status": "down" if down else "ok", "backends": status}
        if down:
            resp.status = falcon.HTTP_503
            resp.media["detail"] = "unavailable: " + ", ".join(down)
