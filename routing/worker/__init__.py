"""Workers: handlers per event type, retries with backoff through RabbitMQ retry queues,
dead letters with the reason, graceful shutdown. See `App`, `Worker` and (for `async def`
handlers) `AsyncWorker`."""

from routing.worker.app import App, Registration
from routing.worker.async_runner import AsyncWorker
from routing.worker.failures import DeadLetterRecord, Failure, Permanent
from routing.worker.idempotency import RecentIds, idempotent
from routing.worker.queues import WorkQueues
from routing.worker.retry import NO_RETRY, RetryPolicy
from routing.worker.runner import Shutdown, Worker, WorkerStats

__all__ = [
    "NO_RETRY",
    "App",
    "AsyncWorker",
    "DeadLetterRecord",
    "Failure",
    "Permanent",
    "RecentIds",
    "Registration",
    "RetryPolicy",
    "Shutdown",
    "WorkQueues",
    "Worker",
    "WorkerStats",
    "idempotent",
]
