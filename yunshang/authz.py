"""Who may do what: the authenticated identity and the permission table (pure).

An :class:`Identity` comes from the center's Keystone (a token's user, project and roles;
``yunshang.openstack.identity``), never from free text. Department roles (requester,
department-head) are held on the project ``dept-<department>`` and act only for that
department; center roles (reviewer, approver, auditor, engineer) are held on the project
``center`` and act for every department. ``authorize()`` is the one check the CLI and the
API both go through (in ``yunshang.usecases``).
"""
from __future__ import annotations

from dataclasses import dataclass

from yunshang.errors import YunshangError
from yunshang.model import CENTER_ROLES, DEPARTMENT_ROLES

CENTER_PROJECT = "center"
DEPARTMENT_PROJECT_PREFIX = "dept-"


class NotPermitted(YunshangError):
    """The authenticated person's roles do not allow this (or not for this department)."""

    exit_code = 2

    def __init__(self, message: str, hide_existence: bool = False):
        super().__init__(message)
        self.hide_existence = hide_existence     # the API answers 404: the object's existence must not leak


class NotAuthenticated(YunshangError):
    """No identity, or the token/credentials were refused."""

    exit_code = 2


@dataclass(frozen=True)
class Identity:
    """An authenticated Keystone user of the center's identity service."""

    user_id: str
    name: str
    roles: frozenset[str]
    department: str = ""          # "" = center-wide

    @property
    def actor(self) -> str:
        """What the audit log records: the Keystone user's name and id."""
        return f"{self.name} (keystone:{self.user_id})"

    def to_dict(self) -> dict:
        return {"user_id": self.user_id, "name": self.name, "roles": sorted(self.roles),
                "department": self.department or None}


def identity_from_token(user_id: str, user_name: str, project_name: str, role_names) -> Identity:
    """The identity a validated token carries: roles counted only on the project they belong to."""
    roles = set(role_names)
    if project_name.startswith(DEPARTMENT_PROJECT_PREFIX):
        dept = project_name[len(DEPARTMENT_PROJECT_PREFIX):]
        held = roles & set(DEPARTMENT_ROLES)
    elif project_name == CENTER_PROJECT:
        dept = ""
        held = roles & set(CENTER_ROLES)
    else:
        dept, held = "", set()
    return Identity(user_id=user_id, name=user_name, roles=frozenset(held), department=dept)


def actor_of(identity: Identity) -> str:
    return identity.actor


# action -> roles that may do it. Department roles: only for their own department.
PERMISSIONS: dict[str, frozenset[str]] = {k: frozenset(v) for k, v in {
    "catalog.read": ("requester", "department-head", "reviewer", "approver", "auditor", "engineer"),
    "request.submit": ("requester",),
    "request.endorse": ("department-head",),
    "request.read": ("requester", "department-head", "reviewer", "approver", "auditor", "engineer"),
    "request.review": ("reviewer",),
    "request.approve": ("approver",),
    "request.reject": ("department-head", "reviewer", "approver"),
    "request.configure": ("engineer",),
    "request.publish": ("engineer",),
    "request.monitor": ("engineer",),
    "request.plan-reclaim": ("engineer",),
    "request.reclaim": ("engineer",),
    "request.keep": ("engineer",),
    "bill.read": ("requester", "department-head", "reviewer", "approver", "auditor", "engineer"),
    "audit.read": ("auditor", "engineer"),
    "capacity.read": ("reviewer", "approver", "engineer"),
    "takeover.drill": ("engineer",),
    "takeover.plan": ("reviewer", "approver", "auditor", "engineer"),
    "report.read": ("reviewer", "approver", "auditor", "engineer"),
    "plan.save": ("engineer",),
}.items()}


def may(identity: Identity, action: str, department: str | None = None) -> bool:
    """Whether ``identity`` may do ``action`` (for ``department``, when the object has one)."""
    allowed = PERMISSIONS[action] & identity.roles
    if not allowed:
        return False
    if allowed & set(CENTER_ROLES):
        return True
    return department is None or department == identity.department


def authorize(identity: Identity | None, action: str, department: str | None = None,
              hide_existence: bool = False) -> Identity:
    """Return ``identity`` if it may do ``action``; raise NotPermitted (no data in the message) otherwise."""
    if identity is None:
        raise NotAuthenticated("not authenticated")
    if PERMISSIONS[action] & identity.roles and not may(identity, action, department):
        # the role is right but the department is not theirs
        raise NotPermitted(f"{identity.name} may not {action} for another department",
                           hide_existence=hide_existence)
    if not may(identity, action, department):
        raise NotPermitted(f"{identity.name} (roles: {', '.join(sorted(identity.roles)) or 'none'}) may not "
                           f"{action}; needs one of: {', '.join(sorted(PERMISSIONS[action]))}")
    return identity


def sees_department(identity: Identity, action: str = "request.read") -> str | None:
    """The department a listing is limited to: None = every department (a center role)."""
    if PERMISSIONS[action] & identity.roles & set(CENTER_ROLES):
        return None
    return identity.department
