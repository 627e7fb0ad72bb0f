"""The only place yunshang imports openstacksdk.

``connect(cloud, clouds_file)`` always names the cloud explicitly and reads only the
given clouds.yaml (or openstacksdk's usual files when None), never OS_CLOUD or other
OS_* environment variables, so one operator's credentials cannot leak into another's.
"""
from __future__ import annotations

import os

import openstack
import openstack.config
import openstack.connection
import openstack.exceptions
from keystoneauth1 import exceptions as ks_exc

from yunshang.errors import CloudUnavailable
from yunshang.redact import exception_text, redact_url
from yunshang.yamlload import read_yaml

__all__ = ["connect", "cloud_names", "CloudUnavailable", "CLOUD_ERRORS"]

# What a failing OpenStack call raises: openstacksdk's errors, and keystoneauth's (auth, connection,
# timeout) where the SDK lets them through unwrapped.
CLOUD_ERRORS = (ks_exc.ClientException, openstack.exceptions.SDKException)

# Connect/read timeout (seconds) for every API call: a dead operator must not hang a report, a busy one
# (servers/detail of all projects on a loaded 2-core devcloud can take >20 s) must still answer.
API_TIMEOUT_SECONDS = 60


def _config(clouds_file: str | None) -> openstack.config.OpenStackConfig:
    if clouds_file is not None:
        if not os.path.exists(clouds_file):
            raise CloudUnavailable(f"clouds file {clouds_file} does not exist")
        read_yaml(clouds_file)   # the one safe loader first: bombs, duplicate keys, size (InputInvalid, exit 2)
        return openstack.config.OpenStackConfig(config_files=[clouds_file], vendor_files=[],
                                                secure_files=[], load_envvars=False)
    return openstack.config.OpenStackConfig(load_envvars=False)


def cloud_names(clouds_file: str | None = None) -> list[str]:
    """The cloud names defined in ``clouds_file`` (or openstacksdk's usual files)."""
    cfg = _config(clouds_file)
    return sorted(cfg.get_cloud_names())


def connect(cloud: str, clouds_file: str | None = None, *, check: bool = True,
            timeout_seconds: float = API_TIMEOUT_SECONDS) -> openstack.connection.Connection:
    """A connection to operator ``cloud`` as defined in ``clouds_file``.

    With ``check`` (default) a token is fetched at once, so an unreachable Keystone or
    refused credentials raise ``CloudUnavailable`` here (the message names the cloud and
    the auth URL, never a secret).
    """
    where = clouds_file or "openstacksdk's default clouds.yaml locations"
    try:
        cfg = _config(clouds_file)
        if cloud not in cfg.get_cloud_names():
            raise CloudUnavailable(f"cloud {cloud!r} is not defined in {where}")
        region = cfg.get_one(cloud=cloud, api_timeout=timeout_seconds)
    except openstack.exceptions.ConfigException as exc:
        raise CloudUnavailable(f"cloud {cloud!r}: bad configuration in {where}: {exception_text(exc)}") from None
    conn = openstack.connection.Connection(config=region)
    if check:
        auth = region.config.get("auth") or {}
        auth_url = redact_url(str(auth.get("auth_url", "?")))
        try:
            conn.authorize()
        except CLOUD_ERRORS as exc:
            # openstacksdk wraps keystoneauth's error in SDKException; the original is the context
            root = exc.__context__ if isinstance(exc, openstack.exceptions.SDKException) and exc.__context__ else exc
            if isinstance(root, ks_exc.Unauthorized) or "(HTTP 401)" in str(exc):
                raise CloudUnavailable(f"cloud {cloud!r}: credentials refused by {auth_url}") from None
            if isinstance(root, ks_exc.HttpError):
                raise CloudUnavailable(f"cloud {cloud!r}: Keystone at {auth_url} answered HTTP "
                                       f"{root.http_status}") from None
            raise CloudUnavailable(f"cloud {cloud!r}: cannot reach Keystone at {auth_url} "
                                   f"({type(root).__name__})") from None
    return conn

