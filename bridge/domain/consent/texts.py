"""The consent texts: one versioned Markdown file per purpose and language.

The victim's grant quotes the text's version and SHA-256 and signs them, so what was agreed to
can be proven later. A text whose first line is not its version refuses to load.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

from bridge.crypto import b64u_encode, sha256
from bridge.errors import Invalid, NotFound

__all__ = ["ConsentText", "ConsentTexts"]

_VERSION = re.compile(r"^<!-- version: ([a-z]+-[a-z]{2}-[0-9]+) -->\n")
PURPOSES = ("informational", "report")
LANGS = ("nl", "en")


@dataclass(frozen=True)
class ConsentText:
    purpose: str
    lang: str
    version: str
    sha256: str
    body: str

    def as_payload(self) -> dict[str, str]:
        return {
            "purpose": self.purpose,
            "lang": self.lang,
            "version": self.version,
            "sha256": self.sha256,
            "body": self.body,
        }

    def reference(self) -> dict[str, str]:
        """What a grant quotes: ``{version, lang, sha256}``."""
        return {"version": self.version, "lang": self.lang, "sha256": self.sha256}


class ConsentTexts:
    """Every current text, loaded once at start."""

    def __init__(self) -> None:
        self._texts: dict[tuple[str, str], ConsentText] = {}
        folder = resources.files("bridge.domain.consent").joinpath("texts")
        for purpose in PURPOSES:
            for lang in LANGS:
                raw = folder.joinpath(f"{purpose}.{lang}.md").read_text("utf-8")
                match = _VERSION.match(raw)
                if match is None or not match.group(1).startswith(f"{purpose}-{lang}-"):
                    raise ValueError(f"{purpose}.{lang}.md does not start with its version line")
                body = raw[match.end() :]
                self._texts[(purpose, lang)] = ConsentText(
                    purpose, lang, match.group(1), b64u_encode(sha256(body.encode())), body
                )

    def get(self, purpose: str, lang: str) -> ConsentText:
        text = self._texts.get((purpose, lang))
        if text is None:
            raise NotFound(f"no consent text for {purpose!r} in {lang!r}")
        return text

    def check_current(self, purpose: str, version: str, lang: str, digest: str) -> ConsentText:
        """The text a grant quotes, if it is the current one for that purpose (else ``invalid``)."""
        text = self._texts.get((purpose, lang))
        if text is None or text.version != version or text.sha256 != digest:
            raise Invalid("the grant does not quote the current consent text")
        return text
