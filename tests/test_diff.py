"""`routing.diff`: a topology against broker definitions, no broker needed."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from routing.definitions import dump_definitions
from routing.diff import MISSING, Difference, as_management_shows, diff_topology
from routing.topology import Binding, Exchange, Queue, Topology

LOGS = Exchange("logs", "topic")
PAGER = Queue("pager", message_ttl=60000, dead_letter_exchange="logs")
TOPOLOGY = Topology.of(LOGS, PAGER, Binding("logs", "pager", "*.error"))


def broker(topology: Topology = TOPOLOGY, **extra: list[dict[str, Any]]) -> dict[str, Any]:
    """Definitions as `GET /api/definitions/{vhost}` gives them, plus what every vhost has."""
    data = dump_definitions(topology, vhost=None)
    data["exchanges"] += [
        {
            "name": "amq.topic",
            "type": "topic",
            "durable": True,
            "auto_delete": False,
            "internal": False,
            "arguments": {},
        },
    ]
    for section, items in extra.items():
        data[section] += items
    return data


def test_same_topology_is_equal() -> None:
    result = diff_topology(TOPOLOGY, broker())
    assert result.equal, result
    assert (result.create, result.differ, result.extra) == ((), (), ())


def test_a_changed_argument_is_named_with_both_values() -> None:
    wanted = Topology.of(
        LOGS,
        Queue("pager", message_ttl=1000, dead_letter_exchange="logs"),
        Binding("logs", "pager", "*.error"),
    )
    result = diff_topology(wanted, broker())
    assert not result.equal
    assert result.differ == (Difference("queue 'pager'", "argument 'x-message-ttl'", 1000, 60000),)
    assert "topology 1000, broker 60000" in result.differ[0].describe()


def test_an_argument_only_one_side_has() -> None:
    wanted = Topology.of(LOGS, Queue("pager", message_ttl=60000), Binding("logs", "pager", "*.error"))
    result = diff_topology(wanted, broker())
    [difference] = result.differ
    assert difference.setting == "argument 'x-dead-letter-exchange'"
    assert difference.topology is MISSING and difference.broker == "logs"
    assert "(not set)" in difference.describe()


def test_exchange_settings_differ_field_by_field() -> None:
    wanted = Topology.of(Exchange("logs", "fanout", durable=False), PAGER, Binding("logs", "pager"))
    result = diff_topology(wanted, broker())
    settings = {d.setting: (d.topology, d.broker) for d in result.differ}
    assert settings == {"type": ("fanout", "topic"), "durable": (False, True)}
    # The binding key changed too: one binding to create, the old one only on the broker.
    assert result.create == ("binding logs -> pager",)
    assert result.extra == ("binding logs -> pager [*.error]",)


def test_missing_entities_would_be_created() -> None:
    wanted = Topology.of(TOPOLOGY, Queue("archive"), Binding("logs", "archive", "#"))
    result = diff_topology(wanted, broker())
    assert result.create == ("queue 'archive'", "binding logs -> archive [#]")
    assert not result.differ and not result.extra


def test_only_on_broker_ignores_amq_default_and_exclusive() -> None:
    extra_queue = {"name": "other", "durable": True, "auto_delete": False, "arguments": {}}
    data = broker(
        queues=[extra_queue],
        bindings=[
            {
                "source": "",
                "destination": "pager",
                "destination_type": "queue",
                "routing_key": "pager",
                "arguments": {},
            },
            # to a queue the definitions do not list: an exclusive one, owned by a connection
            {
                "source": "logs",
                "destination": "amq.gen-abc",
                "destination_type": "queue",
                "routing_key": "#",
                "arguments": {},
            },
        ],
    )
    result = diff_topology(TOPOLOGY, data)
    assert result.extra == ("queue 'other'",)


def test_classic_type_is_the_default_on_both_sides() -> None:
    data = broker()
    data["queues"][0]["arguments"]["x-queue-type"] = "classic"
    assert diff_topology(TOPOLOGY, data).equal


def test_numbers_compare_as_rabbitmq_does_but_booleans_are_not_numbers() -> None:
    data = broker()
    data["queues"][0]["arguments"]["x-message-ttl"] = 60000.0
    assert diff_topology(TOPOLOGY, data).equal
    sac = Topology.of(Queue("q", single_active_consumer=True))
    data = dump_definitions(sac, vhost=None)
    data["queues"][0]["arguments"]["x-single-active-consumer"] = 1
    assert not diff_topology(sac, data).equal


def test_void_header_value_matches_the_managements_undefined() -> None:
    headers = Exchange("media", "headers")
    q = Queue("jpeg")
    wanted = Topology.of(headers, q, Binding("media", "jpeg", arguments={"x-match": "all", "format": None}))
    data = dump_definitions(wanted, vhost=None)
    data["bindings"][0]["arguments"]["format"] = "undefined"
    assert diff_topology(wanted, data).equal


def test_other_vhosts_are_ignored_and_exclusive_queues_skipped() -> None:
    data = dump_definitions(TOPOLOGY, vhost="/")
    data["queues"].append(
        {"name": "x", "vhost": "other", "durable": True, "auto_delete": False, "arguments": {}}
    )
    wanted = TOPOLOGY + Topology.of(Queue("mine", exclusive=True, durable=False))
    result = diff_topology(wanted, data, vhost="/")
    assert result.equal
    assert result.skipped == ("queue 'mine': exclusive, it exists only while its connection is open",)
    assert not diff_topology(TOPOLOGY, data, vhost="other").equal


def test_void_is_undefined_at_any_depth_as_the_management_api_shows_it() -> None:
    # One helper for diff's report and for declare's binding lookup (issue 14).
    value = {"a": None, "b": [None, (1, None)], "c": MappingProxyType({"d": None}), "e": 0, "f": False}
    assert as_management_shows(value) == {
        "a": "undefined",
        "b": ["undefined", [1, "undefined"]],
        "c": {"d": "undefined"},
        "e": 0,
        "f": False,
    }
    assert as_management_shows(None) == "undefined" and as_management_shows("") == ""
