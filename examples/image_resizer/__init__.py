"""The seed tutorial's image resizer for real: workers that resize with Pillow.

    pip install -e ".[examples]"
    routing worker examples.image_resizer:app --queue resize --url amqp://guest:guest@localhost/

A job names an upload in the storage folder ($ROUTING_STORAGE, default ./storage) and the box
to fit; the worker writes `resized/NAME` and `results/<job id>.json`:

    routing publish --exchange jobs --routing-key resize --type task.resize_image \\
        --data '{"input": "uploads/cat.jpg", "width": 320, "height": 200}' --url amqp://...

The same exchange, queue and retry policy as examples/resize_worker.py (the simulated one),
so either serves the `resize` queue. storage.py and results.py are the folder and the result
format the web app (examples/webapp) shares with the workers.
"""

from examples.image_resizer.worker import app, topology

__all__ = ["app", "topology"]
