"""A web endpoint that enqueues jobs: upload an image, get a job id at once, watch it get resized.

    pip install -e ".[webapp]"
    uvicorn examples.webapp.app:app          # then open http://127.0.0.1:8000/

- `POST /jobs/resize` (multipart: `file`, `width`, `height`) checks the request, stores the
  upload under `uploads/` in the storage folder ($ROUTING_STORAGE, default ./storage),
  publishes a `task.resize_image` job and answers `202 {"id": ...}` once the broker confirmed
  it; a job the broker did not take is a `503` (its upload removed), never a lost job.
- `GET /jobs/{id}`: queued, done (with the resized size) or failed (with the reason), from the
  results the worker writes (examples/image_resizer/results.py); `404` for an unknown id.
- `GET /jobs/{id}/image`: the resized image. `GET /`: a page to try it in a browser.

On memory:// (the default) the resizer runs in the same process; with ROUTING_URL=amqp://...
run workers apart: `routing worker examples.image_resizer:app --queue resize`.
"""

__all__: list[str] = []
