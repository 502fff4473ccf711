"""The `Envelope` value, its attribute rules, and `new_document`, the one builder of a fresh event."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rfc3339_validator import validate_rfc3339

from routing._frozen import EMPTY, FrozenDict, freeze, thaw
from routing.errors import ValidationError

SPECVERSION = "1.0"
JSON_TYPE = "application/json"
DEFAULT_SOURCE = "urn:routing:unknown"

OPTIONAL = ("time", "subject", "datacontenttype", "dataschema")
ATTRIBUTES = ("specversion", "id", "source", "type", *OPTIONAL)
RESERVED = frozenset((*ATTRIBUTES, "data", "data_base64"))
EXTENSION_NAME = re.compile(r"^[a-z0-9]+$")
NO_BASE64 = "data_base64: binary data (data_base64) is not supported; send JSON in data"
_INT32 = range(-(2**31), 2**31)


@dataclass(frozen=True, slots=True, kw_only=True)
class Envelope:
    """One event. `data` and `extensions` are deeply frozen (dicts become read-only
    mappings, lists tuples); `to_dict()` gives plain JSON values back. `time` is kept as
    the RFC 3339 text it was written with, so decoding and re-encoding changes nothing.
    One that `decode` made with a registry was validated once, by the schemas, and freezes
    its `data` when it is first read: the same value all the same (equal, hashable)."""

    id: str
    source: str
    type: str
    specversion: str = SPECVERSION
    time: str | None = None
    subject: str | None = None
    datacontenttype: str | None = None
    dataschema: str | None = None
    data: Any = None
    extensions: Mapping[str, str | int | bool] = field(default=EMPTY)

    def __post_init__(self) -> None:
        problems = _attribute_problems(self)
        if problems:
            raise ValidationError(problems, path=problems[0].split(":", 1)[0])
        object.__setattr__(self, "data", freeze(self.data))
        object.__setattr__(self, "extensions", FrozenDict(self.extensions))

    @classmethod
    def new(
        cls,
        type: str,
        data: Any = None,
        *,
        source: str = DEFAULT_SOURCE,
        subject: str | None = None,
        dataschema: str | None = None,
        extensions: Mapping[str, str | int | bool] | None = None,
    ) -> Envelope:
        """A fresh event: a random UUID for `id`, the current UTC time, JSON data."""
        document = new_document(type, data, source=source, subject=subject, dataschema=dataschema)
        # The extensions go to the constructor, which checks them with its own messages.
        return cls(**document, extensions=extensions or EMPTY)

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> Envelope:
        """The envelope a JSON object describes; nulls count as absent (CloudEvents JSON).
        Checks attribute types only: use a `SchemaRegistry` for the rest."""
        values = {k: v for k, v in document.items() if v is not None or k == "data"}
        extensions = {k: v for k, v in values.items() if k not in RESERVED}
        known = {k: values[k] for k in ATTRIBUTES if k in values}
        missing = [
            f"{name}: required" for name in ("specversion", "id", "source", "type") if name not in known
        ]
        if missing:
            raise ValidationError(missing, path=missing[0].split(":", 1)[0])
        if "data_base64" in values:
            raise ValidationError([NO_BASE64], path="data_base64")
        return cls(**known, data=values.get("data"), extensions=extensions)

    def to_dict(self) -> dict[str, Any]:
        """The structured-mode JSON object, with plain dicts and lists."""
        out: dict[str, Any] = {
            "specversion": self.specversion,
            "id": self.id,
            "source": self.source,
            "type": self.type,
        }
        for name in OPTIONAL:
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        out.update(self.extensions)
        data = _DATA_SLOT.__get__(self, Envelope)
        if type(data) is _Unfrozen:  # copied as it is, not frozen to be thawed
            out["data"] = thaw(data.value)
        elif data is not None:
            out["data"] = thaw(data)
        return out

    @property
    def parsed_time(self) -> datetime | None:
        """`time` as an aware datetime (microsecond precision), or None."""
        return parse_time(self.time) if self.time is not None else None

    @classmethod
    def _checked(cls, document: Mapping[str, Any], *, lazy: bool) -> Envelope:
        """`from_dict` for a document a registry whose envelope schema checks the attribute
        rules (`SchemaRegistry.checks_attributes`) has passed, nulls dropped: only what that
        schema lets by is checked again (extension values: 1.0 is a JSON Schema integer).
        With `lazy` (`data` is plain JSON, as parsed, nested shallowly enough to freeze),
        `data` is frozen on first access, not now: a consumer that never reads it never
        pays for it."""
        extensions = {k: v for k, v in document.items() if k not in RESERVED}
        for value in extensions.values():
            if not isinstance(value, str | bool | int):  # the schema took it: an int-valued float
                return cls.from_dict(document)  # which says what is wrong, as it always did
        envelope = object.__new__(cls)
        get = document.get
        for name in ATTRIBUTES:
            _SLOTS[name](envelope, get(name))
        data = get("data")
        _SLOTS["data"](envelope, _Unfrozen(data) if lazy and data is not None else freeze(data))
        _SLOTS["extensions"](envelope, FrozenDict(extensions) if extensions else EMPTY)
        return envelope


class _Unfrozen:
    """`data` as parsed, until `Envelope.data` is first read (`_LazyData`)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class _LazyData:
    """`Envelope.data`: what the dataclass's slot holds, frozen (once) if it was stored
    unfrozen. Everything reads `data` through it (equality, hashing, repr, `to_dict`), so a
    lazy envelope is the same value as an eager one."""

    def __init__(self, slot: Any) -> None:
        self._slot = slot

    def __get__(self, envelope: Envelope | None, owner: type | None = None) -> Any:
        if envelope is None:
            return self
        value = self._slot.__get__(envelope, owner)
        if type(value) is _Unfrozen:
            value = freeze(value.value)
            self._slot.__set__(envelope, value)
        return value

    def __set__(self, envelope: Envelope, value: Any) -> None:  # object.__setattr__ in __post_init__
        self._slot.__set__(envelope, value)


# The setters of the dataclass's slots, for `Envelope._checked`; `data` is read through
# `_LazyData`, which keeps the slot's own descriptor.
_SLOTS = {name: Envelope.__dict__[name].__set__ for name in (*ATTRIBUTES, "data", "extensions")}
_DATA_SLOT = Envelope.__dict__["data"]
setattr(Envelope, "data", _LazyData(_DATA_SLOT))  # noqa: B010 (mypy: a slot)


def random_uuid() -> str:
    """`str(uuid.uuid4())`, at a quarter of its cost (no `UUID` object made): 122 random bits,
    the version 4 and RFC 4122 variant bits set as `uuid.uuid4` sets them."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def new_document(
    event_type: str,
    data: Any = None,
    *,
    source: str = DEFAULT_SOURCE,
    subject: str | None = None,
    dataschema: str | None = None,
    extensions: Mapping[str, str | int | bool] | None = None,
) -> dict[str, Any]:
    """The JSON object of a fresh event: a random UUID for `id`, the current UTC time, JSON
    data. The one place a fresh event is made: `Envelope.new` freezes what this builds, and
    the publisher sends it as it is (no frozen copy of `data` made and thawed again), checked
    only by a registry (whose envelope schema holds the attribute rules)."""
    document: dict[str, Any] = {
        "specversion": SPECVERSION,
        "id": random_uuid(),
        "source": source,
        "type": event_type,
        "time": datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z"),
    }
    if subject is not None:
        document["subject"] = subject
    if data is not None:
        document["datacontenttype"] = JSON_TYPE
    if dataschema is not None:
        document["dataschema"] = dataschema
    if extensions:
        taken = sorted(RESERVED.intersection(extensions))
        if taken:
            problems = [
                f"{name}: not an allowed extension name; it is a CloudEvents attribute" for name in taken
            ]
            raise ValidationError(problems, path=taken[0])
        document.update(extensions)
    if data is not None:
        document["data"] = data
    return document


def _attribute_problems(envelope: Envelope) -> list[str]:
    """What CloudEvents forbids outright, checked without a schema."""
    problems = []
    if envelope.specversion != SPECVERSION:
        problems.append(f"specversion: must be {SPECVERSION!r}, got {envelope.specversion!r}")
    for name in ("id", "source", "type"):
        value = getattr(envelope, name)
        if not isinstance(value, str) or not value:
            problems.append(f"{name}: must be a non-empty string, got {value!r}")
    for name in OPTIONAL:
        value = getattr(envelope, name)
        if value is not None and (not isinstance(value, str) or not value):
            problems.append(f"{name}: must be a non-empty string when present, got {value!r}")
    # RFC 3339 section 5.6 lets `T` and `Z` be lowercase; rfc3339-validator wants them upper.
    if isinstance(envelope.time, str) and envelope.time and not validate_rfc3339(envelope.time.upper()):
        problems.append(f"time: not an RFC 3339 date-time: {envelope.time!r}")
    if not isinstance(envelope.extensions, Mapping):
        return [*problems, f"extensions: must be a mapping, got {type(envelope.extensions).__name__}"]
    for name, value in envelope.extensions.items():
        if not isinstance(name, str) or not EXTENSION_NAME.match(name) or name in RESERVED:
            problems.append(f"{name}: not an allowed extension name; use lowercase letters and digits")
        elif not isinstance(value, str | bool | int) or (type(value) is int and value not in _INT32):
            problems.append(f"{name}: an extension is a string, boolean or 32-bit integer, got {value!r}")
    return problems


def parse_time(text: str) -> datetime | None:
    """RFC 3339 text as an aware datetime; None for one Python cannot hold (a leap second)."""
    try:
        return datetime.fromisoformat(text.upper())
    except ValueError:  # a leap second, say: valid RFC 3339, not a datetime
        return None
