"""One writer a live stream: a lease in the database, taken before the first batch.

Two processes appending to one stream would each score rows after the checkpoint the
other just moved: one of them would have its batches refused. So a writer takes the
stream's lease first (``stream_leases``), renews it while it runs and gives it back at
the end. A lease another writer holds is refused with who holds it; it is free again
once it expires (a writer that vanished on another host) or at once when its process
is gone from this host (``kill -9``, then a restart).
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from storage.db import Bind, as_utc, insert_of, transaction
from storage.errors import StreamConflictError
from storage.schema import StreamLease
from storage.text import NAME_CHARS

LEASE_S = 60.0  # a writer renews its lease well within this (every third of it)


@dataclass(frozen=True)
class Writer:
    """Who writes a stream: ``holder`` tells it apart from every other writer."""

    holder: str
    host: str
    pid: int

    @classmethod
    def this_process(cls, what: str) -> Writer:
        host, pid = socket.gethostname()[:100], os.getpid()
        return cls(f"{what} (pid {pid} on {host}, {uuid.uuid4().hex[:8]})"[:NAME_CHARS],
                   host, pid)


def _process_gone(lease: StreamLease) -> bool:
    """The lease's process was on this host and has ended."""
    if lease.host != socket.gethostname()[:100]:
        return False
    try:
        os.kill(lease.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def _locked(session: Session, source: str) -> StreamLease | None:
    return session.execute(select(StreamLease).where(StreamLease.source == source)
                           .with_for_update()).scalar_one_or_none()


def _busy(source: str, lease: StreamLease) -> StreamConflictError:
    return StreamConflictError(
        f"stream {source!r} is being written by {lease.holder} since "
        f"{as_utc(lease.acquired_at):%Y-%m-%d %H:%M:%S} UTC: one writer a stream. Stop that "
        "writer, or give this one another --source (a writer that stopped without "
        f"giving the stream back frees it within {LEASE_S:.0f} s)")


def acquire(bind: Bind, *, source: str, writer: Writer, seconds: float = LEASE_S) -> None:
    """Take (or renew) the lease of ``source`` for ``writer``; :class:`StreamConflictError`
    when another writer holds it."""
    now = datetime.now(UTC)
    with transaction(bind) as session:
        # Create the row if none exists, so that every writer then locks the same row
        # (on SQLite the insert takes the database's write lock for the transaction).
        insert_row = insert_of(session)
        session.execute(insert_row(StreamLease).values(
            source=source, holder="", host="", pid=0, acquired_at=now, expires_at=now,
        ).on_conflict_do_nothing(index_elements=["source"]))
        lease = _locked(session, source)
        if lease.holder != writer.holder:
            if lease.holder and as_utc(lease.expires_at) > now and not _process_gone(lease):
                raise _busy(source, lease)
            lease.holder, lease.host, lease.pid = writer.holder, writer.host, writer.pid
            lease.acquired_at = now
        lease.expires_at = now + timedelta(seconds=seconds)


def check(session: Session, *, source: str, writer: Writer) -> None:
    """Within a batch's transaction: ``writer`` still holds ``source`` (locked till the
    end of the transaction), else :class:`StreamConflictError`."""
    lease = _locked(session, source)
    if lease is None or lease.holder != writer.holder:
        if lease is None or not lease.holder:
            raise StreamConflictError(f"stream {source!r}: this writer does not hold the "
                                      "stream (its lease was given back)")
        raise _busy(source, lease)


def release(bind: Bind, *, source: str, writer: Writer) -> None:
    """Give the stream back (only if ``writer`` still holds it)."""
    with transaction(bind) as session:
        session.execute(delete(StreamLease).where(StreamLease.source == source,
                                                  StreamLease.holder == writer.holder))
