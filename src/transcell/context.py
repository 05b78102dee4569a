"""Who is asking: the identity every service call carries.

A context is a plain value object so it can cross the RPC boundary as a dict.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from typing import Any


def new_request_id() -> str:
    return f"req-{uuid.uuid4()}"


@dataclass
class RequestContext:
    user_id: str | None = None
    project_id: str | None = None
    roles: list[str] = field(default_factory=list)
    request_id: str = field(default_factory=new_request_id)
    user_name: str | None = None
    project_name: str | None = None

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> RequestContext:
        return cls(**data) if data else cls.admin()

    @classmethod
    def admin(cls) -> RequestContext:
        """The context internal services use for their own housekeeping."""
        return cls(user_id="transcell", project_id="service", roles=["admin", "service"])
