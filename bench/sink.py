"""A keep-alive HTTP sink answering ``204`` to every POST, in a process of its own.

``python -m bench.sink`` prints ``PORT <n>`` once it listens on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from types import TracebackType

from aiohttp import web

from .common import child_env

__all__ = ["Sink"]


async def _serve() -> None:
    async def hook(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/{tail:.*}", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    port = runner.addresses[0][1]
    print(f"PORT {port}", flush=True)
    await asyncio.Event().wait()


class Sink:
    """Starts the sink subprocess; ``url`` is where to POST."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[str] | None = None
        self.url = ""

    def __enter__(self) -> Sink:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "bench.sink"],
            stdout=subprocess.PIPE,
            text=True,
            env=child_env(),
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline().split()
        if len(line) != 2 or line[0] != "PORT":
            self.__exit__(None, None, None)
            raise RuntimeError(f"the sink did not start (said {line!r})")
        self.url = f"http://127.0.0.1:{line[1]}/hook"
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(10)
            if self._proc.stdout is not None:
                self._proc.stdout.close()
            self._proc = None


if __name__ == "__main__":
    asyncio.run(_serve())
