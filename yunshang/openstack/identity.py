"""The center's identity (its Keystone): who a named cloud is, and what a token says.

``identity_of_cloud(clouds_file, cloud)`` authenticates as the clouds.yaml entry (the CLI's
``--os-cloud person-<name>``) and returns the token's identity. ``TokenValidator`` checks
``X-Auth-Token`` values for the API against the Keystone of the ``center`` entry
(``GET /v3/auth/tokens`` with the token as X-Subject-Token), caching a valid answer for a
short time (never beyond the token's own expiry); revoked or expired tokens are refused.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
from typing import Callable

from yunshang.authz import Identity, NotAuthenticated, identity_from_token
from yunshang.errors import CloudUnavailable
from yunshang.openstack import CLOUD_ERRORS, connect


def identity_of_cloud(clouds_file: str | None, cloud: str) -> Identity:
    """Authenticate as ``cloud`` (a person's clouds.yaml entry): the identity its token carries."""
    conn = connect(cloud, clouds_file)
    try:
        access = conn.session.auth.get_access(conn.session)
    except CLOUD_ERRORS as exc:
        raise CloudUnavailable(f"cloud {cloud!r}: cannot get a token ({type(exc).__name__})") from None
    return identity_from_token(access.user_id, access.username, access.project_name or "", access.role_names or ())


def token_of_cloud(clouds_file: str | None, cloud: str) -> str:
    """A fresh token for ``cloud`` (tests and people use it as X-Auth-Token)."""
    conn = connect(cloud, clouds_file)
    return conn.session.get_token()


def revoke_token(clouds_file: str | None, cloud: str, token: str) -> None:
    """Revoke ``token`` (DELETE /v3/auth/tokens) as the admin of ``cloud``."""
    conn = connect(cloud, clouds_file)
    auth_url = conn.session.get_endpoint(service_type="identity", interface="public")
    r = conn.session.delete(auth_url.rstrip("/") + "/auth/tokens", headers={"X-Subject-Token": token},
                            raise_exc=False)
    if r.status_code not in (204, 404):
        raise CloudUnavailable(f"cloud {cloud!r}: token revocation answered HTTP {r.status_code}")


class TokenValidator:
    """Validate Keystone tokens against the center's Keystone; thread-safe, short cache."""

    def __init__(self, clouds_file: str | None, cloud: str = "center", cache_seconds: float = 10.0,
                 clock: Callable[[], float] = time.monotonic, max_entries: int = 10000):
        self.clouds_file, self.cloud = clouds_file, cloud
        self.cache_seconds = cache_seconds
        self._clock = clock
        self._max = max_entries
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, Identity]] = {}
        self._conn = None

    def _session(self):
        if self._conn is None:
            self._conn = connect(self.cloud, self.clouds_file)
        return self._conn.session

    def validate(self, token: str) -> Identity:
        """The identity of ``token``; NotAuthenticated when Keystone does not know it (bad, expired, revoked)."""
        if not token or len(token) > 4096:
            raise NotAuthenticated("no valid token")
        key = hashlib.sha256(token.encode()).hexdigest()       # tokens themselves are not kept
        now = self._clock()
        with self._lock:
            hit = self._cache.get(key)
            if hit and hit[0] > now:
                return hit[1]
        ident, expires_at = self._ask_keystone(token)
        left = (expires_at - dt.datetime.now(dt.timezone.utc)).total_seconds()
        if left <= 0:
            raise NotAuthenticated("token expired")
        with self._lock:
            if len(self._cache) >= self._max:
                self._cache.clear()
            self._cache[key] = (now + min(self.cache_seconds, left), ident)
        return ident

    def revoke(self, token: str) -> None:
        """Revoke ``token`` at the center's Keystone (the portal's logout) and forget it here."""
        with self._lock:
            self._cache.pop(hashlib.sha256(token.encode()).hexdigest(), None)
            sess = self._session()
        try:
            url = sess.get_endpoint(service_type="identity", interface="public").rstrip("/") + "/auth/tokens"
            sess.delete(url, headers={"X-Subject-Token": token}, raise_exc=False)
        except CLOUD_ERRORS:
            pass                   # the cookie is dropped anyway; the token expires on its own

    def _ask_keystone(self, token: str) -> tuple[Identity, dt.datetime]:
        with self._lock:
            sess = self._session()
        try:
            url = sess.get_endpoint(service_type="identity", interface="public").rstrip("/") + "/auth/tokens"
            r = sess.get(url, headers={"X-Subject-Token": token}, raise_exc=False)
        except CLOUD_ERRORS as exc:
            raise CloudUnavailable(f"the center's Keystone ({self.cloud}) is unreachable ({type(exc).__name__})") \
                from None
        if r.status_code in (401, 403, 404):
            raise NotAuthenticated("no valid token")
        if r.status_code != 200:
            raise CloudUnavailable(f"the center's Keystone ({self.cloud}) answered HTTP {r.status_code}")
        t = r.json()["token"]
        expires = dt.datetime.fromisoformat(t["expires_at"].replace("Z", "+00:00"))
        ident = identity_from_token(t["user"]["id"], t["user"]["name"], (t.get("project") or {}).get("name", ""),
                                    [x["name"] for x in t.get("roles", [])])
        return ident, expires


def ensure_person(clouds_file: str | None, admin_cloud: str, name: str, project: str, roles, password: str,
                  description: str = "") -> str:
    """Create or update a user of the center's Keystone with exactly ``roles`` on ``project``; its id.

    For tooling and tests that need people beyond people.yaml (the devcloud creates those)."""
    conn = connect(admin_cloud, clouds_file)
    idn = conn.identity
    changed = False
    try:
        proj = idn.find_project(project, domain_id="default") or idn.create_project(
            name=project, domain_id="default", description="yunshang center identity")
        u = idn.find_user(name, domain_id="default")
        if u is None:
            u = idn.create_user(name=name, domain_id="default", password=password, description=description)
        else:
            idn.update_user(u, password=password)
            changed = True
        have = {a.role["id"] for a in idn.role_assignments(user_id=u.id, scope_project_id=proj.id)}
        for r in roles:
            role = idn.find_role(r) or idn.create_role(name=r)
            if role.id not in have:
                idn.assign_project_role_to_user(proj, u, role)
        if changed:
            # Keystone records the password change as a revocation event with one-second precision:
            # a token issued within the same second would be taken as revoked. Let that second pass.
            time.sleep(1.1)
        return u.id
    except CLOUD_ERRORS as exc:
        raise CloudUnavailable(f"cloud {admin_cloud!r}: cannot set up user {name} ({type(exc).__name__})") from None


def password_login(clouds_file: str | None, center_cloud: str, username: str, password: str) -> str:
    """A token for ``username``/``password`` at the center's Keystone (the portal's login), scoped to
    the one project the person's roles are held on. NotAuthenticated when Keystone refuses."""
    from keystoneauth1 import session as ks_session
    from keystoneauth1.identity import v3

    if not username or not password or len(username) > 255 or len(password) > 4096:
        raise NotAuthenticated("login refused")
    conn = connect(center_cloud, clouds_file)
    auth_url = conn.config.get_auth_args()["auth_url"]
    try:
        unscoped = ks_session.Session(auth=v3.Password(auth_url=auth_url, username=username, password=password,
                                                       user_domain_name="Default"), timeout=30)
        projects = unscoped.get(auth_url.rstrip("/") + "/auth/projects",
                                headers={"X-Auth-Token": unscoped.get_token()}, raise_exc=False)
        names = [p["name"] for p in projects.json().get("projects", [])] if projects.status_code == 200 else []
        if len(names) != 1:
            raise NotAuthenticated("login refused")
        scoped = ks_session.Session(auth=v3.Password(auth_url=auth_url, username=username, password=password,
                                                     user_domain_name="Default", project_name=names[0],
                                                     project_domain_name="Default"), timeout=30)
        return scoped.get_token()
    except CLOUD_ERRORS as exc:
        from keystoneauth1 import exceptions as ks_exc

        if isinstance(exc, ks_exc.Unauthorized):
            raise NotAuthenticated("login refused") from None
        raise CloudUnavailable(f"the center's Keystone ({center_cloud}) is unreachable ({type(exc).__name__})") \
            from None
