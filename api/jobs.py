"""Jobs a request asks for, sent to the workers once its transaction has committed (polar's
JobQueueManager idea): a handler adds a job beside the rows it writes and never sends by hand, so a job
is never sent for rows that were rolled back, nor before the worker could read them.

A job added in a transaction that commits is sent when the request's session is done (after the commit,
before the answer goes out); one added in a transaction that rolls back, or never ends, is dropped.
Sending never fails the request (workers/jobs.py): a broker that is down leaves the job queued in the
database for the workers' sweep.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import event
from sqlalchemy.orm import SessionTransaction
from sqlmodel import Session

Send = Callable[[str, int], object]  # (kind, job id): workers.jobs.send


class Jobs:
    """The request's jobs: pending in its open transaction, ready once that transaction committed."""

    def __init__(self) -> None:
        self.session: Session | None = None
        self.pending: list[tuple[str, int]] = []
        self.ready: list[tuple[str, int]] = []

    def watch(self, session: Session) -> None:
        """Follow this session's transactions. The listeners are on this one session, for this request
        only (removed when ``sent_after`` ends)."""
        self.session = session
        self._marks: dict[SessionTransaction, int] = {}
        for name, listener in self._listeners():
            event.listen(session, name, listener)

    def _listeners(self) -> list[tuple[str, Callable[..., None]]]:
        return [
            ("after_transaction_create", self._began),
            ("after_commit", self._committed),
            ("after_soft_rollback", self._rolled_back),
        ]

    def add(self, kind: str, job_id: int | None) -> None:
        """Send this job (of a kind workers/jobs.py knows) once the transaction that wrote it has committed."""
        assert job_id is not None, "a job is added once its row is flushed"
        self.pending.append((kind, job_id))

    def _began(self, session: Session, transaction: SessionTransaction) -> None:
        if transaction.nested:  # a savepoint: what is added inside it goes if it rolls back
            self._marks[transaction] = len(self.pending)

    def _committed(self, session: Session) -> None:
        if not session.in_nested_transaction():  # the transaction itself, not a savepoint inside it
            self.ready += self.pending
            self.pending = []

    def _rolled_back(self, session: Session, previous: SessionTransaction) -> None:
        if previous.nested:
            del self.pending[self._marks.pop(previous, len(self.pending)) :]
        elif previous.parent is None:
            self.pending = []

    @contextmanager
    def sent_after(self, send: Send) -> Iterator[Jobs]:
        """Around the request's session: on leaving, stop listening and send the jobs whose transaction
        committed (a request that failed after a commit still sends what that commit made)."""
        try:
            yield self
        finally:
            if self.session is not None:
                for name, listener in self._listeners():
                    event.remove(self.session, name, listener)
            ready, self.ready, self.pending = self.ready, [], []
            for kind, job_id in ready:
                send(kind, job_id)
