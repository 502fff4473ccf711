"""RabbitMQ release profiles: where releases differ, the difference is a field here, not an `if`.

A profile names a family of releases that behave alike in everything this toolkit models.
`profile("4.0.5")`, `profile("4.0")` and `profile(None)` (the newest verified) give one; an
unknown version is a `ProfileError` naming the supported ones. Each field says what it models
and on which live broker it was checked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from routing.errors import TopologyError

__all__ = [
    "DEFAULT_PROFILE",
    "DEPRECATIONS",
    "PROFILES",
    "Deprecation",
    "Profile",
    "ProfileError",
    "profile",
    "release_of",
]


class ProfileError(TopologyError, ValueError):
    """A RabbitMQ version no profile covers."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Profile:
    """What one family of RabbitMQ releases does, where families differ."""

    name: str
    """The family, as users write it: "3.10", "4.0"."""
    releases: str
    """The releases it covers, for messages: "3.10-3.12"."""
    verified_on: str
    """The live broker it was checked against."""
    # Headers exchange (rabbit_exchange_type_headers): 3.10-3.12 compare values with Erlang
    # `==` (1 == 1.0, 0.0 == -0.0); 4.0 with `=:=` on the decoded message.
    headers_numeric_coercion: bool
    # 4.0 decodes a timestamp header to milliseconds before comparing; 3.10 compares its seconds.
    headers_timestamp_in_ms: bool
    # 4.0 gives quorum queues a delivery limit of 20 when none is set (-1 disables it).
    quorum_default_delivery_limit: int | None
    # 3.10 reads (and extends) an `x-death` header a client published; 4.0 ignores it.
    reads_client_x_death: bool
    # Quorum queues (rabbit_fifo): 3.10 puts a message nacked with requeue at the back when the
    # queue has no delivery limit (returns otherwise go to the head); 4.0 always has a limit
    # unless -1. Checked live: tests/test_embedded_queue_reference.py::test_quorum_requeue_position.
    quorum_requeue_to_back: bool
    # 3.10 adds `x-delivery-count` to every basic.get from a quorum queue (0 on a first delivery);
    # 4.0 only to redeliveries. Checked live on 3.10.8 and 4.0.5 (same test).
    quorum_get_delivery_count_always: bool
    # 3.10's rabbit_fifo gives a consumer one more credit each time a message it returned is
    # dead-lettered by the delivery limit (it holds prefetch + n unacked); 4.0 does not.
    # Checked live: tests/test_embedded_queue_reference.py::test_quorum_delivery_limit_zero_credit.
    quorum_delivery_limit_credit_leak: bool
    # 3.10's rabbit_dead_letter regroups two or more earlier x-death entries with a fold that
    # reverses them, so repeated deaths reorder the older entries. Found by the differential
    # test (tests/conformance/test_differential.py, seed 46) on 3.10.8. (4.0 builds x-death
    # from records in the message instead: see dead_letter_routing_key_drops_cc.)
    x_death_regroup_reverses: bool
    # Dead letters get into a quorum `reject-publish` queue over its limit (only publishing
    # channels are told to stop), on 3.10.8 and 4.0.5. Found by the differential test (seed 51);
    # tests/test_embedded_queue_reference.py::test_dead_letters_get_into_a_refusing_quorum_queue.
    quorum_reject_publish_takes_dead_letters: bool
    # 4.0 builds x-death from records kept in the message (mc:record_death): each entry starts
    # with original-expiration, and x-last-death-{reason,queue,exchange} come with it. Checked
    # live: tests/test_embedded_reference.py::test_x_death_after_reject_then_maxlen_matches_rabbitmq.
    # (Which of the two is used follows reads_client_x_death.)
    # 3.10 deletes CC from a message dead-lettered with x-dead-letter-routing-key; 4.0 keeps it
    # (same test).
    dead_letter_routing_key_drops_cc: bool
    # The order a routed message reaches its queues, seen in the order their dead letters come
    # out: 3.10 in reverse order of queue names, 4.0 in order (mostly: queues are processes and
    # now and then two race). Found by the differential test (seed 1022) on 3.10.8 and 4.0.5.
    queues_in_reverse_name_order: bool
    # 4.0 keeps a quorum queue's delivery count in the message when it is dead-lettered (a
    # reject counts one more): dead-lettered into a quorum queue it arrives redelivered, with
    # that x-delivery-count. 3.10 starts it afresh. Found by the differential test (seed 2003)
    # on 4.0.5.
    dead_letters_keep_delivery_count: bool
    # A quorum delivery_limit of -1: 4.0 takes it as "no limit"; 3.10 as 0 (the first return
    # dead-letters the message). Checked live: tests/test_release_defaults.py.
    quorum_delivery_limit_minus_one_is_none: bool
    # The largest message body the broker takes by default (`max_message_size`): 128 MiB on
    # 3.10, 16 MiB on 4.0, where one byte more closes the channel with 406 "message size N is
    # larger than configured max size M". Checked live: tests/test_release_defaults.py.
    max_message_size: int
    # How long a consumer may hold a delivery unacknowledged before the broker closes its channel
    # (`consumer_timeout`, ms): 30 minutes on both. Read live on 3.10.8 and 4.0.5 with
    # `rabbitmqctl eval 'application:get_env(rabbit, consumer_timeout).'` -> {ok,1800000}.
    consumer_timeout_ms: int
    # What this family deprecates (warns about) or, from a later release on, refuses: names of
    # DEPRECATIONS. 3.10 warns of none of them (checked live: it takes them all silently).
    deprecations: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Deprecation:
    """Something a release still takes but has deprecated, and the release that refuses it."""

    feature: str
    """RabbitMQ's deprecated-feature name (`rabbitmqctl list_deprecated_features`), or ours."""
    refused_in: str | None
    """The first release that refuses it by default, or None while none does."""
    instead: str
    """What to use instead."""


# Sources: rabbitmq.com "List of Deprecated Features"; the 4.0.0 and 4.3.0 release notes
# ("Deprecated Features are Now Disabled by Default", "CQv1 storage is removed").
DEPRECATIONS: dict[str, Deprecation] = {
    "transient_nonexcl_queues": Deprecation(
        feature="transient_nonexcl_queues",
        refused_in="4.3",
        instead="a durable queue (with a queue TTL, `expires`, to clean it up) or an exclusive one",
    ),
    "queue_mode": Deprecation(
        feature="x-queue-mode",
        refused_in="4.3",
        instead="nothing: classic queues keep messages on disk since 3.12; drop the argument",
    ),
    "queue_version_1": Deprecation(
        feature="x-queue-version=1",
        refused_in="4.3",
        instead="x-queue-version 2 (the default), or leave the argument out",
    ),
    "queue_master_locator": Deprecation(
        feature="queue_master_locator",
        refused_in="4.3",
        instead="x-queue-leader-locator",
    ),
}


PROFILES: dict[str, Profile] = {
    "3.10": Profile(
        name="3.10",
        releases="3.10-3.12",
        verified_on="RabbitMQ 3.10.8 (Erlang 25)",
        headers_numeric_coercion=True,
        headers_timestamp_in_ms=False,
        quorum_default_delivery_limit=None,
        reads_client_x_death=True,
        quorum_requeue_to_back=True,
        quorum_get_delivery_count_always=True,
        quorum_delivery_limit_credit_leak=True,
        x_death_regroup_reverses=True,
        quorum_reject_publish_takes_dead_letters=True,
        dead_letter_routing_key_drops_cc=True,
        queues_in_reverse_name_order=True,
        dead_letters_keep_delivery_count=False,
        quorum_delivery_limit_minus_one_is_none=False,
        max_message_size=134_217_728,
        consumer_timeout_ms=1_800_000,
    ),
    "4.0": Profile(
        name="4.0",
        releases="4.0 and later",
        verified_on="RabbitMQ 4.0.5 (Erlang 27)",
        headers_numeric_coercion=False,
        headers_timestamp_in_ms=True,
        quorum_default_delivery_limit=20,
        reads_client_x_death=False,
        quorum_requeue_to_back=False,
        quorum_get_delivery_count_always=False,
        quorum_delivery_limit_credit_leak=False,
        x_death_regroup_reverses=False,
        quorum_reject_publish_takes_dead_letters=True,
        dead_letter_routing_key_drops_cc=False,
        queues_in_reverse_name_order=False,
        dead_letters_keep_delivery_count=True,
        quorum_delivery_limit_minus_one_is_none=True,
        max_message_size=16_777_216,
        consumer_timeout_ms=1_800_000,
        deprecations=tuple(DEPRECATIONS),
    ),
}

DEFAULT_PROFILE = PROFILES["4.0"]
"""The newest verified profile: what every function uses when not told otherwise."""

_VERSION = re.compile(r"^\s*v?(\d+)(?:\.(\d+))?(?:\.\d+)*(?:[-+~].*)?\s*$")


def profile(version: str | Profile | None = None) -> Profile:
    """The profile for a RabbitMQ version ("3.10", "3.10.8", "4.0.5", "4.1"), a profile, or None."""
    if version is None:
        return DEFAULT_PROFILE
    if isinstance(version, Profile):
        return version
    match = _VERSION.match(str(version))
    if match:
        major, minor = int(match[1]), int(match[2] or 0)
        if major == 3 and 10 <= minor <= 12:
            return PROFILES["3.10"]
        if major >= 4:
            return PROFILES["4.0"]
    supported = ", ".join(f"{p.name} ({p.releases})" for p in PROFILES.values())
    raise ProfileError(f"no profile for RabbitMQ {version!r}; supported: {supported}")


def release_of(version: str | Profile | None) -> tuple[int, int]:
    """(major, minor) of a version ("4.0.5" -> (4, 0)); a profile or None gives its family's."""
    if version is None or isinstance(version, Profile):
        version = profile(version).name
    match = _VERSION.match(str(version))
    if not match:
        profile(version)  # raises the clear error
        raise AssertionError  # pragma: no cover
    return int(match[1]), int(match[2] or 0)
