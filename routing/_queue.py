"""Queues as frozen values: classic or quorum, RabbitMQ's arguments as typed fields."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass, replace
from enum import StrEnum
from typing import Any

from routing._amqp import INT64, MAX_EXPIRY_MS
from routing._frozen import EMPTY, FrozenDict, thaw
from routing._validate import check_arguments, check_encodable, check_name, enum_value
from routing.errors import TopologyError


class QueueType(StrEnum):
    CLASSIC = "classic"
    QUORUM = "quorum"


class Overflow(StrEnum):
    DROP_HEAD = "drop-head"
    REJECT_PUBLISH = "reject-publish"
    REJECT_PUBLISH_DLX = "reject-publish-dlx"


# x-argument name -> (Queue field, the check its value must pass, what the check means,
# the queue types that accept it). Checked against RabbitMQ 3.10's rabbit_amqqueue and
# rabbit_quorum_queue argument validation.
def _non_negative_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= INT64[1]


def _positive_int(v: Any) -> bool:
    return _non_negative_int(v) and v > 0


def _milliseconds(v: Any) -> bool:
    return _non_negative_int(v) and v <= MAX_EXPIRY_MS


_BOTH = (QueueType.CLASSIC, QueueType.QUORUM)
_QUEUE_ARGUMENTS: dict[str, tuple[str, Any, str, tuple[QueueType, ...]]] = {
    # RabbitMQ refuses more than ten years (406 value_too_large; see routing._amqp).
    "x-message-ttl": (
        "message_ttl",
        _milliseconds,
        f"an integer >= 0 and <= {MAX_EXPIRY_MS} (ms, ten years)",
        _BOTH,
    ),
    "x-expires": (
        "expires",
        lambda v: _positive_int(v) and v <= MAX_EXPIRY_MS,
        f"an integer >= 1 and <= {MAX_EXPIRY_MS} (ms, ten years)",
        _BOTH,
    ),
    "x-max-length": ("max_length", _non_negative_int, "an integer >= 0 and < 2**63", _BOTH),
    "x-max-length-bytes": ("max_length_bytes", _non_negative_int, "an integer >= 0 and < 2**63", _BOTH),
    "x-overflow": (
        "overflow",
        lambda v: v in tuple(Overflow),
        "drop-head, reject-publish or reject-publish-dlx",
        _BOTH,
    ),
    "x-dead-letter-exchange": (
        "dead_letter_exchange",
        lambda v: isinstance(v, str),
        "a string",
        _BOTH,
    ),
    "x-dead-letter-routing-key": (
        "dead_letter_routing_key",
        lambda v: isinstance(v, str),
        "a string",
        _BOTH,
    ),
    "x-delivery-limit": (
        "delivery_limit",
        # -1 is "no limit" on 4.0, which gives a quorum queue a limit of 20 unless told so;
        # 3.10 takes -1 as 0 (tests/test_release_defaults.py; routing.targets warns of it).
        lambda v: (type(v) is int and v == -1) or _non_negative_int(v),
        "an integer >= 0 and < 2**63, or -1 for no limit",
        (QueueType.QUORUM,),
    ),
    "x-max-priority": (
        "max_priority",
        lambda v: _positive_int(v) and v <= 255,
        "an integer 1-255",
        (QueueType.CLASSIC,),
    ),
    "x-single-active-consumer": (
        "single_active_consumer",
        lambda v: isinstance(v, bool),
        "true or false",
        _BOTH,
    ),
}
_FIELD_ARGUMENT = {spec[0]: name for name, spec in _QUEUE_ARGUMENTS.items()}
# Raw arguments a 3.10 quorum queue refuses with 406 "invalid arg" (checked on the broker).
_CLASSIC_ONLY_ARGUMENTS = ("x-queue-mode", "x-queue-version", "x-queue-master-locator")


@dataclass(frozen=True, slots=True)
class Queue:
    """A queue, classic or quorum, with RabbitMQ's arguments as typed keywords.

    `Queue("jobs", type="quorum", delivery_limit=5, dead_letter_exchange="dlx")`.
    Raw `arguments` are accepted too; known ones move to their typed field, so both
    spellings give equal queues.
    """

    name: str
    _: KW_ONLY
    type: QueueType = QueueType.CLASSIC
    durable: bool = True
    exclusive: bool = False
    auto_delete: bool = False
    message_ttl: int | None = None
    expires: int | None = None
    max_length: int | None = None
    max_length_bytes: int | None = None
    overflow: Overflow | None = None
    dead_letter_exchange: str | None = None
    dead_letter_routing_key: str | None = None
    delivery_limit: int | None = None
    max_priority: int | None = None
    single_active_consumer: bool | None = None
    arguments: Mapping[str, Any] = EMPTY

    def __post_init__(self) -> None:
        check_name("queue", self.name)
        where = f"queue {self.name!r}"
        set_ = object.__setattr__
        args = dict(self.arguments)
        check_arguments(where, args)
        qtype = args.pop("x-queue-type", self.type)
        if "x-queue-type" in self.arguments and self.type not in (QueueType.CLASSIC, qtype):
            raise TopologyError(f"{where}: type={self.type!r} and x-queue-type={qtype!r} disagree")
        qtype = enum_value(QueueType, qtype, f"{where} type")
        set_(self, "type", qtype)
        for arg, (attr, check, meaning, types) in _QUEUE_ARGUMENTS.items():
            value = getattr(self, attr)
            if arg in args:
                given = args.pop(arg)
                if value is not None and value != given:
                    raise TopologyError(
                        f"{where}: {attr}={value!r} and {arg}={given!r} disagree; give it once"
                    )
                value = given
            if value is None:
                continue
            if not check(value):
                raise TopologyError(f"{where}: {attr} ({arg}) must be {meaning}, got {value!r}")
            if qtype not in types:
                raise TopologyError(
                    f"{where}: {attr} ({arg}) is for {' and '.join(types)} queues only, not {qtype}"
                )
            if attr == "overflow":
                value = Overflow(value)
            set_(self, attr, value)
        if self.dead_letter_routing_key is not None and self.dead_letter_exchange is None:
            raise TopologyError(f"{where}: dead_letter_routing_key needs a dead_letter_exchange")
        if qtype is QueueType.QUORUM:
            if not self.durable:
                raise TopologyError(f"{where}: quorum queues are always durable; remove durable=False")
            if self.exclusive:
                raise TopologyError(f"{where}: quorum queues cannot be exclusive; use a classic queue")
            if self.auto_delete:
                raise TopologyError(f"{where}: quorum queues cannot be auto-delete; use a classic queue")
            if self.overflow is Overflow.REJECT_PUBLISH_DLX:
                raise TopologyError(f"{where}: quorum queues do not support overflow reject-publish-dlx")
            for arg in _CLASSIC_ONLY_ARGUMENTS:  # 406 "invalid arg" on 3.10.8 and 4.0.5 (checked live)
                if arg in args:
                    raise TopologyError(f"{where}: argument {arg!r} is for classic queues only; remove it")
        set_(self, "arguments", FrozenDict(args))
        check_encodable(where, self.declare_arguments)  # the typed fields too (a DLX name, say)

    @property
    def declare_arguments(self) -> dict[str, Any]:
        """The `arguments` table as RabbitMQ receives it."""
        args: dict[str, Any] = thaw(self.arguments)
        if self.type is not QueueType.CLASSIC:
            args["x-queue-type"] = str(self.type)
        for attr, arg in _FIELD_ARGUMENT.items():
            value = getattr(self, attr)
            if value is not None:
                args[arg] = str(value) if attr == "overflow" else value
        return args

    @property
    def replicable(self) -> bool:
        """A durable, non-exclusive, non-auto-delete classic queue: work meant to outlive a
        connection, yet kept on one node of a cluster. `Topology.replicated()` makes it quorum."""
        return self.type is QueueType.CLASSIC and self.durable and not self.exclusive and not self.auto_delete


def as_quorum(queue: Queue) -> Queue:
    """`queue` as a quorum queue with the same settings; `TopologyError` naming the queue
    and the argument when it has one only classic queues take."""
    where = f"queue {queue.name!r} cannot be a quorum queue"
    keep = "remove it, or add this queue to the topology after replicated() so it stays classic"
    if not queue.replicable:
        raise TopologyError(f"{where}: only durable, non-exclusive, non-auto-delete queues can")
    if queue.max_priority is not None:
        raise TopologyError(f"{where}: max_priority (x-max-priority) is for classic queues only; {keep}")
    if queue.overflow is Overflow.REJECT_PUBLISH_DLX:
        raise TopologyError(
            f"{where}: overflow reject-publish-dlx (x-overflow) is for classic queues only; "
            "use reject-publish or drop-head, or add this queue after replicated()"
        )
    for arg in _CLASSIC_ONLY_ARGUMENTS:
        if arg in queue.arguments:
            raise TopologyError(f"{where}: argument {arg!r} is for classic queues only; {keep}")
    return replace(queue, type=QueueType.QUORUM)
