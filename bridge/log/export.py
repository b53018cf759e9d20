"""``bridge audit export``: fetch the whole log from a running bridge into the export format.

The export is JSON Lines, every line the JCS of its object: a header with the key the log began
with (the first of ``/log-keys``: later keys are handed over in the log itself) and the signed
checkpoint of the whole export (its head); the entries in order, each signed checkpoint right
after the last entry it covers; last, that head again (see :mod:`bridge.log.verify`).
Like the verifier, this imports nothing of the server: an auditor can run it alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import aiohttp

from bridge.crypto import jcs
from bridge.log.progress import Progress

__all__ = ["ExportError", "fetch_export"]

FORMAT = "fier-bridge-log/1"
PAGE = 1000


class ExportError(Exception):
    """The bridge refused or failed a request of the export."""


async def _get(http: aiohttp.ClientSession, url: str, token: str) -> Any:
    async with http.get(url, headers={"Authorization": f"Bearer {token}"}) as response:
        body = await response.json(content_type=None)
        if response.status != 200:
            error = body.get("error", {}) if isinstance(body, dict) else {}
            raise ExportError(f"{url}: {response.status} {error.get('message', '')}".strip())
        return body


async def fetch_export(base_url: str, token: str) -> list[bytes]:
    """The export's lines, fetched from ``base_url`` with an auditor's token."""
    api = base_url.rstrip("/") + "/api/v1/audit"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as http:
        final = await _get(http, f"{api}/checkpoint", token)
        history = await _get(http, f"{api}/log-keys", token)
        size = int(final["size"])
        entries: list[Any] = []
        progress = Progress("entries fetched", size)
        while len(entries) < size:
            count = min(PAGE, size - len(entries))
            page = await _get(http, f"{api}/entries?start={len(entries)}&count={count}", token)
            entries += [item["entry"] for item in page["entries"]]
            progress.advance(len(page["entries"]))
        progress.finish()
        checkpoints: list[Any] = []
        while True:
            page = await _get(
                http, f"{api}/checkpoints?start={len(checkpoints)}&count={PAGE}", token
            )
            checkpoints += page["checkpoints"]
            if len(page["checkpoints"]) < PAGE:
                break
    signed_before = [c for c in checkpoints if c["size"] <= size and c != final]
    first = history["keys"][0]
    header = {
        "format": FORMAT,
        "head": final,
        "origin": history["origin"],
        "log_key": {"key_id": first["key_id"], "ed25519": first["ed25519"]},
    }
    return [jcs(line) for line in _lines(header, entries, [*signed_before, final])]


def _lines(header: Any, entries: list[Any], checkpoints: list[Any]) -> Iterator[Any]:
    yield header
    pending = iter(checkpoints)
    upcoming = next(pending, None)
    while upcoming is not None and upcoming["size"] == 0:
        yield {"checkpoint": upcoming}
        upcoming = next(pending, None)
    for index, entry in enumerate(entries):
        yield {"index": index, "entry": entry}
        while upcoming is not None and upcoming["size"] == index + 1:
            yield {"checkpoint": upcoming}
            upcoming = next(pending, None)
