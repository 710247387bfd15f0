"""File bytes in the database (shared by every process and machine)."""

from __future__ import annotations

import hashlib

from sqlalchemy.orm import Session

from storage.sales import Blob


def store_blob(session: Session, content: bytes) -> Blob:
    blob = Blob(sha256=hashlib.sha256(content).hexdigest(), content=content, size=len(content))
    session.add(blob)
    session.flush()
    return blob
