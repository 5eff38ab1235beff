"""`python -m api`: serve on HOST:PORT (loopback by default; dev auth must never face a network)."""

from __future__ import annotations

import uvicorn

from core.settings import load_settings


def main() -> None:
    settings = load_settings()
    if settings.auth_mode == "dev" and settings.host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("invalid configuration: AUTH_MODE=dev only binds loopback (set HOST=127.0.0.1)")
    from api.app import create_app

    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        log_config=None,
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
