"""Kafka's default key partitioner (Java ``Utils.murmur2``), so partitions are chosen here.

The connector picks each message's partition itself: it must know which partition received the
last message of each transaction (see :mod:`datamesh.cdc.delivery`), and librdkafka warns
against mixing explicit and partitioner-chosen partitions with the idempotent producer. The
hash is the one Java clients and librdkafka's ``murmur2_random`` use, so a key lands on the
same partition whoever produces it.
"""

from __future__ import annotations

_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """32-bit murmur2 of ``data`` with Kafka's seed, as an unsigned int."""
    length = len(data)
    h = (0x9747B28C ^ length) & _MASK
    end = length & ~3
    for i in range(0, end, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    extra = length & 3
    if extra == 3:
        h ^= data[end + 2] << 16
    if extra >= 2:
        h ^= data[end + 1] << 8
    if extra >= 1:
        h ^= data[end]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)


def partition_for(key: bytes | None, partitions: int) -> int:
    """The partition of ``key`` among ``partitions`` (null keys: partition 0)."""
    if partitions == 1 or key is None:
        return 0
    return (murmur2(key) & 0x7FFFFFFF) % partitions
