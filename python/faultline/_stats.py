# SPDX-License-Identifier: MIT
"""Statistics as dataclasses, one per C structure (field names as in C)."""

import dataclasses

from . import _lib


def _from_struct(cls, struct):
    return cls(**{f.name: getattr(struct, f.name) for f in dataclasses.fields(cls)})


def _dataclass(name, fields, doc):
    cls = dataclasses.make_dataclass(
        name, [(f, int, 0) for f in fields], frozen=True, namespace={"asdict": dataclasses.asdict}
    )
    cls.__doc__ = doc
    cls.__module__ = "faultline"
    return cls


Stats = _dataclass(
    "Stats",
    _lib.STATS_FIELDS,
    "Statistics of an engine or a mapping (struct fl_stats): counters since it "
    "was made, and gauges (dirty_pages, cached_pages, private_pages) now.",
)
GroupStats = _dataclass(
    "GroupStats",
    _lib.GROUP_STATS_FIELDS,
    "Statistics of a memory group (struct fl_group_stats): usage, peak, max and "
    "high in bytes, pages, faults, reclaim, OOM events, wait_ns.",
)
LockStats = _dataclass(
    "LockStats",
    _lib.LOCK_STATS_FIELDS,
    "How long faults held the engine's map lock and how long map/unmap waited "
    "for it (struct fl_lock_stats), in nanoseconds.",
)
SwapStats = _dataclass(
    "SwapStats",
    _lib.SWAP_STATS_FIELDS,
    "Statistics of a swap device (struct fl_swap_stats): slots, swap-outs "
    "(pages_written), swap-ins (pages_read), errors.",
)
CompressedStats = _dataclass(
    "CompressedStats",
    _lib.COMPRESSED_STATS_FIELDS,
    "Statistics of a compressed store (struct fl_compressed_stats); "
    "bytes_in / bytes_out is the compression ratio.",
)
RedisStats = _dataclass(
    "RedisStats",
    _lib.REDIS_STATS_FIELDS,
    "Counters of a Redis store (struct fl_redis_stats).",
)


def stats(struct):
    return _from_struct(Stats, struct)


def group_stats(struct):
    return _from_struct(GroupStats, struct)


def lock_stats(struct):
    return _from_struct(LockStats, struct)


def swap_stats(struct):
    return _from_struct(SwapStats, struct)


def compressed_stats(struct):
    return _from_struct(CompressedStats, struct)


def redis_stats(struct):
    return _from_struct(RedisStats, struct)
