"""Testing with routing: the broker under test as a test sees it, and the pytest plugin's
fixtures (`routing.pytest_plugin`, loaded by pytest itself once routing is installed).

    def test_checkout(routing_topology_declared, routing_transport):
        checkout(routing_transport, order)                   # the code under test publishes
        routing_topology_declared.assert_routed(["orders.created"], type="order.created")

`Broker` works without pytest too: `with Broker.for_test() as broker: broker.declare(...)`.
"""

from routing.testing._broker import WAIT, Broker
from routing.testing._recording import Published, RecordingTransport

__all__ = ["WAIT", "Broker", "Published", "RecordingTransport"]
