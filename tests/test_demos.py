"""The four demos: each runs on the embedded broker and, marked `broker`, on RabbitMQ, and
both brokers report the same deliveries."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from routing import pipeline
from routing.cli import main
from routing.demos import DEMOS, cache_invalidation, header_filtering, topic_logs, work_queue


def _memory_url(unique: str) -> str:
    return f"memory://{unique}"  # a fresh embedded broker per test


@pytest.mark.parametrize("name", list(DEMOS))
def test_demo_runs_on_the_embedded_broker(name: str, unique: str) -> None:
    result = DEMOS[name](_memory_url(unique), prefix=f"{unique}.")
    assert result.name == name
    assert result.deliveries and result.facts and result.summary


@pytest.mark.parametrize("name", list(DEMOS))
def test_demo_cleans_up_so_a_rerun_gives_the_same_facts(name: str, unique: str) -> None:
    url = _memory_url(unique)
    assert DEMOS[name](url).facts == DEMOS[name](url).facts


def test_topic_logs_deliveries_follow_the_routing_rules(unique: str) -> None:
    result = topic_logs.run(_memory_url(unique), prefix=f"{unique}.")
    topo = topic_logs.topology(f"{unique}.")
    expected = set()
    for n, (service, level, _) in enumerate(topic_logs.RECORDS, 1):
        for q in pipeline.route(topo, f"{unique}.logs", f"{service}.{level}"):
            expected.add(f"{q.rsplit('.', 1)[1]} <- #{n} {service}.{level}")
    assert set(result.facts) == expected
    assert "pager <- #4 auth.error" in result.facts
    pager = [d for d in result.deliveries if d.consumer == "pager"]
    assert {d.why for d in pager} == {"'*.error' matches 'billing.error'", "'*.error' matches 'auth.error'"}


def test_cache_invalidation_late_joiner_misses_earlier_events(unique: str) -> None:
    result = cache_invalidation.run(_memory_url(unique), prefix=f"{unique}.")
    got = {i: {d.message for d in result.deliveries if d.consumer == i} for i in ("api-1", "api-2", "api-3")}
    assert got["api-1"] == got["api-2"] == {"E1", "E2", "E3", "E4"}
    assert got["api-3"] == {"E3", "E4"}
    after = {row[0]: row[3] for row in result.tables[2].rows}  # after the events, before the cut
    assert after == {"api-1": "user:2", "api-2": "user:2", "api-3": "config:timeout, user:1, user:2"}


def test_cache_invalidation_cut_instance_reports_a_gap_and_clears(unique: str) -> None:
    result = cache_invalidation.run(_memory_url(unique), prefix=f"{unique}.")
    assert "api-1 gap reconnect" in result.facts
    assert [(row[0], row[1], row[3]) for row in result.tables[3].rows] == [("api-1", "reconnect", "(empty)")]


def test_header_filtering_matches_and_near_misses(unique: str) -> None:
    result = header_filtering.run(_memory_url(unique), prefix=f"{unique}.")
    assert set(result.facts) == {"eu-pdf <- M1", "us-csv <- M3", "urgent <- M3", "urgent <- M5"}
    near = [row for row in result.tables[2].rows if row[0] == "M2" and row[1] == "eu-pdf"]
    assert near == [("M2", "eu-pdf", "miss", "x-match all: format equal, region differs")]


def test_work_queue_retries_and_dead_letters(unique: str) -> None:
    result = work_queue.run(_memory_url(unique), prefix=f"{unique}.")
    done = {d.message for d in result.deliveries if d.outcome == "done"}
    assert done == {f"job-{n}" for n in range(1, work_queue.JOBS + 1)} - {f"job-{work_queue.ALWAYS_FAILS}"}
    assert f"dead-letter queue <- job-{work_queue.ALWAYS_FAILS}" in result.facts
    assert f"retried x1 <- job-{work_queue.FAILS_ONCE}" in result.facts
    assert f"retried x{work_queue.MAX_ATTEMPTS - 1} <- job-{work_queue.ALWAYS_FAILS}" in result.facts
    redelivered = [
        d for d in result.deliveries if d.message == f"job-{work_queue.FAILS_ONCE}" and d.outcome == "done"
    ]
    assert len(redelivered) == 1 and "redelivered" in redelivered[0].why


def test_cli_demo_all_names_the_broker_first(unique: str) -> None:
    out = CliRunner().invoke(main, ["demo", "all", "--url", _memory_url(unique)])
    assert out.exit_code == 0, out.output
    assert out.output.splitlines()[0].startswith("broker: embedded (in-process)")
    for name in DEMOS:
        assert f"== demo {name} ==" in out.output
    assert out.output.count("summary: ") == len(DEMOS)


def test_cli_demo_json_lists_every_delivery(unique: str) -> None:
    out = CliRunner().invoke(main, ["demo", "topic-logs", "--json", "--url", _memory_url(unique)])
    assert out.exit_code == 0, out.output
    (account,) = json.loads(out.stdout)
    assert account["demo"] == "topic-logs"
    assert len(account["deliveries"]) == 12
    assert {"consumer", "queue", "message", "routing_key", "why"} <= set(account["deliveries"][0])


def test_cli_demo_unknown_name_fails() -> None:
    out = CliRunner().invoke(main, ["demo", "nope"])
    assert out.exit_code == 2


@pytest.mark.broker
@pytest.mark.parametrize("name", list(DEMOS))
def test_demo_reports_the_same_deliveries_on_rabbitmq(name: str, amqp_url: str, unique: str) -> None:
    embedded = DEMOS[name](_memory_url(unique), prefix=f"{unique}.")
    rabbit = DEMOS[name](amqp_url, prefix=f"{unique}.")
    assert rabbit.facts == embedded.facts
    assert "guest:guest" not in rabbit.broker
