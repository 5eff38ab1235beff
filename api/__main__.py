"""`python -m api`: serve on HOST:PORT (loopback by default; `create_app` refuses dev auth on any
other address)."""

from __future__ import annotations

from typing import Any

import uvicorn

from core.settings import Settings, load_settings


def serve(app: Any, settings: Settings) -> None:
    from api.limits import uvicorn_options

    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        log_config=None,
        timeout_graceful_shutdown=10,
        # httptools, with the request-head limit it lacks (api/limits.py).
        **uvicorn_options(settings.max_header_bytes),
    )


def main() -> None:
    settings = load_settings()
    from api.app import create_app

    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
