"""The static baseline: the same gunicorn returning fixed bytes, the floor of serving them.

`gunicorn -c python:agentstats.gunicorn_conf bench.static_app` with BENCH_STATIC_DIR
naming a folder the harness filled with a real stats answer captured in the run:
`gzip.body` (the bytes the app sent to a client accepting gzip), `gzip.encoding` (its
Content-Encoding, empty when the app sent it uncompressed) and `identity.body`. A request
accepting gzip gets the first, any other the second: the same size and encoding as the
app's answer, without the app.
"""

import functools
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


def load_variant(folder: Path, name: str) -> tuple[bytes, list[tuple[str, str]]]:
    """The body and headers of one captured variant ("gzip" or "identity")."""
    body = (folder / f"{name}.body").read_bytes()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    encoding_file = folder / f"{name}.encoding"
    encoding = encoding_file.read_text().strip() if encoding_file.exists() else ""
    if encoding:
        headers.append(("Content-Encoding", encoding))
    return body, headers


def choose_variant(accept_encoding: str) -> str:
    """ "gzip" when the client accepts it (any q other than 0), else "identity"."""
    for item in accept_encoding.split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() == "gzip":
            quality = params.strip().lower().removeprefix("q=")
            return "identity" if quality in {"0", "0.0", "0.00", "0.000"} else "gzip"
    return "identity"


def build_application(folder: Path) -> Callable[[dict[str, Any], StartResponse], list[bytes]]:
    """A WSGI app answering every request with the captured body its Accept-Encoding
    asks for."""
    variants = {name: load_variant(folder, name) for name in ("gzip", "identity")}

    def application(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        body, headers = variants[choose_variant(environ.get("HTTP_ACCEPT_ENCODING", ""))]
        start_response("200 OK", list(headers))
        return [body]

    return application


@functools.cache
def _loaded() -> Callable[[dict[str, Any], StartResponse], list[bytes]]:
    return build_application(Path(os.environ["BENCH_STATIC_DIR"]))


def application(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """gunicorn's entry point: the folder named by BENCH_STATIC_DIR, loaded once."""
    return _loaded()(environ, start_response)
