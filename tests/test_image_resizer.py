"""The image resizer (examples/image_resizer): real Pillow images made in a temporary storage
folder, resized by the example's own `app` in a `Worker` on the embedded broker and on RabbitMQ
(`Bench`, test_worker, and the pytest plugin's `routing_broker`), and by `routing worker examples.image_resizer:app` in a process of its own.

Checked: the resized file's size, format and aspect; the result file; a corrupt upload (or a
decompression bomb) dead-lettered with its reason after one attempt; a missing upload retried
until it appears; paths that leave the storage folder refused; the pure parts (fit, formats,
EXIF orientation, GIF frames, alpha on JPEG, result files) on their own.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, features
from test_worker import Bench, bench, event, wait_until

from routing import Envelope, encode, to_properties
from routing.testing import Broker
from routing.transport import open_transport
from routing.worker import Permanent

ROOT = Path(__file__).parents[1]
if str(ROOT) not in sys.path:  # `examples` is a folder of the clone, not an installed package
    sys.path.insert(0, str(ROOT))

from examples.image_resizer import app, topology  # noqa: E402
from examples.image_resizer.images import fit, output_format, resize  # noqa: E402
from examples.image_resizer.results import Result, read_result, result_path, write_result  # noqa: E402
from examples.image_resizer.storage import STORAGE_ENV, inside, storage_dir  # noqa: E402
from examples.image_resizer.worker import RETRY, resize_image  # noqa: E402

__all__ = ["bench"]  # a fixture, used by name

WAIT = 15.0
ORIENTATION = 0x0112  # the EXIF tag


def picture(
    size: tuple[int, int], fmt: str = "PNG", mode: str = "RGB", color: Any = "red", **save: Any
) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, color).save(buffer, fmt, **save)
    return buffer.getvalue()


def noise(size: tuple[int, int], fmt: str) -> bytes:
    """A picture that does not compress away: cut short, its pixel data is missing."""
    buffer = io.BytesIO()
    Image.effect_noise(size, 64).save(buffer, fmt)
    return buffer.getvalue()


def opened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


@pytest.fixture
def storage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A storage folder of the test's own, which the worker finds through $ROUTING_STORAGE."""
    monkeypatch.setenv(STORAGE_ENV, str(tmp_path / "storage"))
    return storage_dir()


def job(**data: Any) -> Envelope:
    return event(data)


def result(storage: Path, job_id: str, status: str = "done") -> Result:
    """The job's result, once it has `status`."""
    found: list[Result | None] = [None]

    def has() -> bool:
        found[0] = read_result(storage, job_id)
        return found[0] is not None and found[0].status == status

    wait_until(has, f"result {job_id} {status} (is {found[0]})", WAIT)
    assert found[0] is not None
    return found[0]


# ------------------------------------------------------------------ the pure parts


@pytest.mark.parametrize(
    ("size", "box", "fitted"),
    [
        ((400, 300), (200, 200), (200, 150)),  # wider: the width binds
        ((300, 400), (200, 200), (150, 200)),  # taller: the height binds
        ((400, 300), (100, 1000), (100, 75)),
        ((100, 50), (400, 400), (400, 200)),  # smaller than the box: scaled up
        ((640, 480), (640, 480), (640, 480)),
        ((3, 2), (10, 10), (10, 7)),  # 6.67 rounds to 7
        ((10_000, 1), (100, 100), (100, 1)),  # never a side of 0
    ],
)
def test_fit_keeps_the_aspect_ratio_inside_the_box(
    size: tuple[int, int], box: tuple[int, int], fitted: tuple[int, int]
) -> None:
    assert fit(size, box) == fitted
    assert fitted[0] <= box[0] and fitted[1] <= box[1]
    assert fitted[0] == box[0] or fitted[1] == box[1]  # the largest that fits


def test_the_output_format_follows_the_suffix() -> None:
    assert output_format("cat.JPG", "PNG") == "JPEG"
    assert output_format("cat.png", "JPEG") == "PNG"
    assert output_format("cat", "GIF") == "GIF"  # no suffix: the input's format
    with pytest.raises(Permanent, match=r"cannot write \.txt files"):
        output_format("cat.txt", "PNG")
    with pytest.raises(Permanent, match=r"cannot write \.psd files"):
        output_format("cat.psd", "PNG")  # Pillow reads PSD, but cannot write it


def test_exif_orientation_is_applied_before_fitting() -> None:
    exif = Image.Exif()
    exif[ORIENTATION] = 6  # stored landscape, shown turned 90 degrees: portrait
    photo = picture((400, 200), "JPEG", exif=exif.tobytes())
    assert opened(photo).size == (400, 200)
    done = resize(photo, width=100, height=100, name="photo.jpg")
    assert (done.width, done.height) == (50, 100)
    assert opened(done.data).size == (50, 100)


def test_an_animated_gif_gives_its_first_frame() -> None:
    frames = [Image.new("RGB", (60, 30), color) for color in ("red", "blue", "lime")]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert opened(buffer.getvalue()).n_frames == 3  # type: ignore[attr-defined]
    done = opened(resize(buffer.getvalue(), width=30, height=30, name="a.png").data)
    assert done.size == (30, 15)
    r, g, b = done.convert("RGB").getpixel((15, 7))  # type: ignore[misc]
    assert r > 200 and g < 50 and b < 50  # red, the first frame's


def test_a_transparent_png_is_laid_on_white_for_jpeg() -> None:
    clear = picture((40, 40), mode="RGBA", color=(0, 0, 0, 0))
    done = resize(clear, width=20, height=20, name="clear.jpg")
    image = opened(done.data)
    assert (done.format, image.format, image.mode) == ("JPEG", "JPEG", "RGB")
    assert min(image.getpixel((10, 10))) > 240  # type: ignore[arg-type]  # white, not black


@pytest.mark.parametrize(("fmt", "mode"), [("JPEG", "RGB"), ("PNG", "RGBA"), ("GIF", "P"), ("WEBP", "RGB")])
def test_each_format_is_read_and_written(fmt: str, mode: str) -> None:
    if fmt == "WEBP" and not features.check("webp"):
        pytest.skip("this Pillow was built without WebP")
    suffix = {"JPEG": "jpg"}.get(fmt, fmt.lower())
    done = resize(picture((90, 60), fmt, mode), width=30, height=30, name=f"out.{suffix}")
    image = opened(done.data)
    assert (image.format, image.size) == (fmt, (30, 20))


def test_keep_aspect_false_stretches_to_the_box() -> None:
    done = resize(picture((400, 300)), width=50, height=200, keep_aspect=False, name="x.png")
    assert opened(done.data).size == (50, 200)


@pytest.mark.parametrize(
    "pixels",
    [
        1_000,  # the picture is over twice the bound: Pillow raises
        3_000,  # over the bound: Pillow warns, an error in this test suite
        pytest.param(3_000, marks=pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")),
    ],
)
def test_a_decompression_bomb_is_refused(pixels: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", pixels)
    with pytest.raises(Permanent, match="decompression bomb"):
        resize(picture((60, 60)), width=10, height=10, name="x.png")  # 3,600 pixels
    assert resize(picture((30, 30)), width=10, height=10, name="x.png").width == 10  # 900: fine


def test_a_result_over_the_pixel_bound_is_refused() -> None:
    with pytest.raises(Permanent, match=r"the result would be 60000x60000 pixels"):
        resize(picture((10, 10)), width=60_000, height=60_000, name="x.png")


@pytest.mark.parametrize(
    "data", [b"", b"not an image at all", noise((50, 50), "PNG")[:1000], noise((50, 50), "JPEG")[:1000]]
)
def test_a_corrupt_image_is_permanent(data: bytes) -> None:
    with pytest.raises(Permanent):
        resize(data, width=10, height=10, name="x.png")


def test_paths_must_stay_inside_the_storage(storage: Path) -> None:
    outside = storage.parent / "secret.txt"
    outside.write_text("secret")
    (storage / "uploads" / "link.png").symlink_to(outside)
    assert inside(storage, "uploads/cat.png", what="input") == storage / "uploads" / "cat.png"
    assert inside(storage, str(storage / "uploads/cat.png"), what="input") == storage / "uploads" / "cat.png"
    assert inside(storage, "uploads/../uploads/cat.png", what="input") == storage / "uploads" / "cat.png"
    for escaping in (
        "../secret.txt",
        "../../etc/passwd",
        "/etc/passwd",
        "uploads/link.png",
        ".",
        "",
        "a\x00b",
    ):
        with pytest.raises(Permanent):
            inside(storage, escaping, what="input")


def test_results_are_written_whole_and_read_back(storage: Path) -> None:
    assert read_result(storage, "job-1") is None  # none yet: queued
    done = Result(id="job-1", status="done", output="resized/cat.jpg", width=320, height=213)
    path = write_result(storage, done)
    assert path == storage / "results" / "job-1.json"
    assert json.loads(path.read_text()) == {
        "id": "job-1",
        "status": "done",
        "reason": None,
        "output": "resized/cat.jpg",
        "width": 320,
        "height": 213,
        "attempts": 0,
    }
    assert read_result(storage, "job-1") == done
    write_result(storage, Result(id="job-1", status="failed", reason="Permanent: no"))
    assert [p.name for p in (storage / "results").iterdir()] == ["job-1.json"]  # no temporary left
    with pytest.raises(ValueError, match="cannot name a result file"):
        result_path(storage, "../../etc/passwd")
    with pytest.raises(ValueError, match="status must be one of"):
        Result(id="x", status="lost")  # type: ignore[arg-type]


# ------------------------------------------------------------------ the worker, on both brokers


def send(broker: Broker, queue: str, envelope: Envelope) -> Envelope:
    """As a producer publishes a job: to the work queue, through the default exchange."""
    broker.transport.publish("", queue, encode(envelope), to_properties(envelope), mandatory=True)
    return envelope


def test_an_upload_is_resized_and_its_result_written(
    routing_broker: Broker, unique: str, storage: Path
) -> None:
    """With the pytest plugin, as a user of the example would test it (on both brokers here:
    conftest.py gives the plugin the suite's `either_url`)."""
    queue = f"{unique}.resize"
    (storage / "uploads" / "cat.png").write_bytes(picture((400, 300), "PNG", "RGBA"))
    routing_broker.declare(app.topology(queue))
    send(
        routing_broker,
        queue,
        job(id="job-1", input="uploads/cat.png", width=200, height=200, output="small/cat.jpg"),
    )
    unnamed = send(
        routing_broker, queue, job(input=str(storage / "uploads" / "cat.png"), width=40, height=90)
    )
    routing_broker.assert_routed(queue, exchange="")
    stats = routing_broker.run_app(app, queue)
    assert (stats.processed, stats.retried, stats.dead_lettered) == (2, 0, 0)
    first, second = read_result(storage, "job-1"), read_result(storage, unnamed.id)  # no `id`: the envelope's
    assert first == Result(id="job-1", status="done", output="resized/small/cat.jpg", width=200, height=150)
    with Image.open(storage / "resized" / "small" / "cat.jpg") as image:
        assert (image.format, image.size, image.mode) == ("JPEG", (200, 150), "RGB")
    assert second == Result(id=unnamed.id, status="done", output="resized/cat.png", width=40, height=30)
    with Image.open(storage / "resized" / "cat.png") as image:
        assert image.size == (40, 30)
    for name in routing_broker.queues:
        routing_broker.assert_queue(name, count=0, timeout=0)


@pytest.mark.parametrize(
    ("upload", "reason"),
    [
        (b"GIF89a, or so it says", "Permanent: not an image this Pillow can read"),
        (
            noise((90, 90), "PNG")[:2000],
            "Permanent: cannot resize the PNG image: OSError: image file is truncated",
        ),
        (picture((300, 300), "PNG"), "Permanent: refused, a decompression bomb"),  # under a bound of 10,000
    ],
)
def test_a_corrupt_upload_is_dead_lettered_with_its_reason_and_no_retry(
    routing_broker: Broker,
    unique: str,
    storage: Path,
    monkeypatch: pytest.MonkeyPatch,
    upload: bytes,
    reason: str,
) -> None:
    """With the pytest plugin too (see the test above)."""
    queue = f"{unique}.resize"
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)
    (storage / "uploads" / "bad.png").write_bytes(upload)
    (storage / "uploads" / "good.png").write_bytes(picture((20, 20)))
    routing_broker.declare(app.topology(queue))
    sent = send(routing_broker, queue, job(id="bad", input="uploads/bad.png", width=100, height=100))
    send(routing_broker, queue, job(id="good", input="uploads/good.png", width=10, height=10))
    stats = routing_broker.run_app(app, queue)
    assert (stats.processed, stats.retried, stats.dead_lettered) == (1, 0, 1)  # no retry copy
    [letter] = routing_broker.assert_dead_lettered(f"{queue}.dead", reason=reason, count=1)
    assert letter.reason.startswith(reason), letter.reason
    assert (letter.id, letter.attempts, letter.error_type) == (sent.id, 1, "Permanent")
    failed = read_result(storage, "bad")
    assert failed is not None and (failed.status, failed.reason, failed.attempts) == (
        "failed",
        letter.reason,
        1,
    )
    assert read_result(storage, "good") is not None
    assert not (storage / "resized" / "bad.png").exists()
    for name in set(routing_broker.queues) - {f"{queue}.dead"}:
        routing_broker.assert_queue(name, count=0, timeout=0)


def test_a_missing_upload_is_retried_until_it_appears(bench: Bench, storage: Path) -> None:
    bench.declare(app)
    bench.send(job(id="late", input="uploads/late.png", width=50, height=50))
    with bench.worker(app) as spy:
        waiting = result(storage, "late", "retrying")
        (storage / "uploads" / "late.png").write_bytes(picture((100, 20)))
        done = result(storage, "late", "done")
        stats = spy.worker.stats
    assert waiting.reason == f"FileNotFoundError: no input 'uploads/late.png' in {storage} (yet)"
    assert waiting.attempts == 1
    assert (stats.processed, stats.dead_lettered) == (1, 0) and stats.retried >= 1
    assert (done.width, done.height, done.attempts) == (50, 10, stats.retried)
    assert spy.published[0][0] == f"{bench.queue}.retry.{RETRY.delay_ms(1)}ms"
    with Image.open(storage / "resized" / "late.png") as image:
        assert image.size == (50, 10)
    for queue in bench.queues:
        assert bench.drain(queue) == [], queue


def test_the_last_failed_attempt_is_reported_failed(storage: Path) -> None:
    """The result says "failed" when the worker gives up: the attempt the policy ends with."""
    envelope = job(id="never", input="uploads/never.png", width=5, height=5)
    for attempt in range(1, RETRY.max_attempts + 1):
        with pytest.raises(FileNotFoundError):
            resize_image(envelope)
        last = read_result(storage, "never")
        assert last is not None and last.attempts == attempt
        assert last.status == ("failed" if attempt == RETRY.max_attempts else "retrying")


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"input": "../../etc/passwd"}, "Permanent: input '../../etc/passwd' is outside "),
        ({"input": "/etc/passwd"}, "Permanent: input '/etc/passwd' is outside "),
        ({"output": "../../escaped.png"}, "Permanent: output '../../escaped.png' is outside "),
        ({"output": "OUTSIDE/escaped.png"}, "Permanent: output 'OUTSIDE/escaped.png' is outside "),
        ({"id": "../escaped"}, "Permanent: job id '../escaped' cannot name a result file"),
        ({"width": 60_000, "height": 60_000}, "Permanent: refused: the result would be 60000x60000 pixels"),
        ({"width": 70_000}, "data.width: 70000 is more than the maximum 65535"),  # the schema's bound
    ],
)
def test_paths_that_leave_the_storage_and_sizes_over_the_bounds_are_refused(
    bench: Bench, storage: Path, fields: dict[str, Any], reason: str
) -> None:
    outside = str(storage.parent)  # an absolute path beside the storage folder
    fields = {k: v.replace("OUTSIDE", outside) if isinstance(v, str) else v for k, v in fields.items()}
    reason = reason.replace("OUTSIDE", outside)
    (storage / "uploads" / "cat.png").write_bytes(picture((40, 40)))
    bench.declare(app)
    sent = bench.send(job(**{"id": "job", "input": "uploads/cat.png", "width": 10, "height": 10, **fields}))
    with bench.worker(app) as spy:
        [letter] = bench.letters(1)
        stats = spy.worker.stats
    assert (stats.processed, stats.retried, stats.dead_lettered) == (0, 0, 1)
    assert (letter.id, letter.attempts) == (sent.id, 1)
    assert letter.reason.startswith(reason), letter.reason
    assert not list((storage / "resized").iterdir())
    assert not list(storage.parent.glob("escaped*"))
    assert len(bench.drain(bench.dead)) == 1
    for queue in bench.queues - {bench.dead}:
        assert bench.drain(queue) == [], queue


# ------------------------------------------------------------------ the README's two lines


@pytest.mark.broker
def test_routing_worker_runs_the_example(amqp_url: str, unique: str, tmp_path: Path) -> None:
    """`routing worker examples.image_resizer:app --queue ...` from the clone, as the README says."""
    queue = f"{unique}.resize"
    storage = tmp_path / "storage"
    (storage / "uploads").mkdir(parents=True)
    (storage / "uploads" / "dog.jpg").write_bytes(picture((640, 480), "JPEG"))
    env = {**os.environ, STORAGE_ENV: str(storage)}
    command = [sys.executable, "-m", "routing", "worker", "examples.image_resizer:app", "--queue", queue]
    process = subprocess.Popen(
        [*command, "--url", amqp_url],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with open_transport(amqp_url) as t:
            envelope = job(id="dog", input="uploads/dog.jpg", width=320, height=320)
            deadline = time.monotonic() + 30
            while True:  # the worker declares its queue; until then the job has nowhere to go
                t.publish("", queue, encode(envelope), to_properties(envelope), mandatory=True)
                if t.flush(timeout=WAIT) == []:
                    break
                assert time.monotonic() < deadline and process.poll() is None, "the worker did not declare"
                time.sleep(0.1)
        while (done := read_result(storage, "dog")) is None:
            assert time.monotonic() < deadline and process.poll() is None, "the job was not done"
            time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
        with open_transport(amqp_url) as t:
            for q in app.topology(queue).queues:
                t.delete_queue(q.name)
    assert process.returncode == 0, err[-2000:]
    assert done == Result(id="dog", status="done", output="resized/dog.jpg", width=320, height=240)
    with Image.open(storage / "resized" / "dog.jpg") as image:
        assert image.size == (320, 240)
    assert topology.queues[0].name == "resize"  # what `routing declare examples.image_resizer:topology` makes
