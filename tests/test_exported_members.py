"""The public API is what `routing.__all__` says, sorted, and every name in it exists."""

import routing


def test_all_is_sorted_and_complete() -> None:
    assert routing.__all__ == sorted(routing.__all__)
    public = {
        n
        for n in dir(routing)
        if not n.startswith("_") and not isinstance(getattr(routing, n), type(routing))
    }
    public.discard("logger")
    assert public - {"annotations"} <= set(routing.__all__), public - set(routing.__all__)
    for name in routing.__all__:
        assert hasattr(routing, name), name
