"""`routing invalidate` and `routing listen`: thin, and one line on errors."""

from __future__ import annotations

import threading
import time

from click.testing import CliRunner

from routing.broadcast import Listener
from routing.cli import main


def test_invalidate_reaches_a_listener(unique: str) -> None:
    url = f"memory://{unique}"
    cache = {"user:1": 1, "user:2": 2, "price:eur": 3}
    with Listener(url, exchange="inv") as listener:
        listener.attach(cache, name="users")
        listener.attach(cache, name="prices")
        runner = CliRunner()
        one = runner.invoke(
            main, ["invalidate", "--url", url, "--exchange", "inv", "--cache", "users", "--key", "user:1"]
        )
        two = runner.invoke(
            main,
            ["invalidate", "--url", url, "--exchange", "inv", "--cache", "prices", "--pattern", "price:*"],
        )
        deadline = time.monotonic() + 5
        while listener.stats.applied < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
    assert one.exit_code == 0 and "invalidated user:1 in cache 'users'" in one.output
    assert two.exit_code == 0, two.output
    assert cache == {"user:2": 2}


def test_listen_prints_events(unique: str) -> None:
    url = f"memory://{unique}"
    runner = CliRunner()

    def send() -> None:
        time.sleep(0.5)
        runner.invoke(
            main, ["invalidate", "--url", url, "--exchange", "inv", "--cache", "users", "--key", "u:1"]
        )

    thread = threading.Thread(target=send)
    thread.start()
    result = runner.invoke(main, ["listen", "--url", url, "--exchange", "inv", "--timeout", "1.5"])
    thread.join()
    assert result.exit_code == 0, result.output
    assert 'cache.invalidate: {"cache": "users", "keys": ["u:1"]' in result.output


def test_errors_are_one_line() -> None:
    runner = CliRunner()
    both = runner.invoke(
        main, ["invalidate", "--exchange", "x", "--cache", "c", "--key", "k", "--pattern", "p*"]
    )
    assert both.exit_code == 2 and "not both" in both.output
    down = runner.invoke(
        main, ["listen", "--url", "amqp://guest:secret@127.0.0.1:1/", "--exchange", "x", "--timeout", "0"]
    )
    assert down.exit_code == 1
    assert "Traceback" not in down.output and "secret" not in down.output
    assert len([line for line in down.output.splitlines() if line.startswith("Error")]) == 1
