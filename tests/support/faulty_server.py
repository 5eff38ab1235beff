"""`python -m api` with one extra route that fails with an unhandled exception, served exactly
as `python -m api` serves (same protocol, limits and loop): for tests of what a server process
sends when the app breaks."""

from __future__ import annotations

from api.__main__ import serve
from api.app import create_app
from core.settings import load_settings


def main() -> None:
    settings = load_settings()
    app = create_app(settings)

    async def boom() -> dict:
        raise RuntimeError("an unexpected bug")

    app.router.add_api_route("/__test__/boom", boom, methods=["GET", "POST"], include_in_schema=False)
    serve(app, settings)


if __name__ == "__main__":
    main()
