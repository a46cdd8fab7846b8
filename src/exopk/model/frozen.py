"""A read-only mapping that hashes, for the fields of frozen domain objects."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["FrozenMapping"]


class FrozenMapping(Mapping):
    """A read-only copy of a mapping; equal to any mapping with the same items, and hashable.

    Examples
    --------
    >>> targets = FrozenMapping({"plasma": "1"})
    >>> targets == {"plasma": "1"}, hash(targets) == hash(FrozenMapping({"plasma": "1"}))
    (True, True)
    """

    __slots__ = ("_items",)

    def __init__(self, items=()):
        self._items = dict(items)

    def __getitem__(self, key):
        return self._items[key]

    def __iter__(self):
        return iter(self._items)

    def __len__(self):
        return len(self._items)

    def __hash__(self):
        return hash(frozenset(self._items.items()))

    def __repr__(self):
        return repr(self._items)
