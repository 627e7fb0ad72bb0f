"""The devcloud: a real OpenStack control plane per operator on 127.0.0.1 (for demos and tests).

``Devcloud(dir, operators=...).up()`` installs what is missing (Debian packages,
the services' own venv from ``requirements-lock.txt``, the test drivers in
``drivers/``), starts MariaDB + RabbitMQ (shared) and, per operator, Keystone,
Placement, Nova (fake virt driver, one nova-compute per catalog zone), Glance,
Neutron (ML2 + agentless ``fakebind``) and Cinder (fake driver), waits until ready
and writes ``<dir>/clouds.yaml`` (one admin entry per operator, named like the
operator). See ``layout`` for ports and names, docs/devcloud.md for figures.
"""
from yunshang.devcloud.control import Devcloud, DevcloudFailed
from yunshang.devcloud.layout import (DEFAULT_OPERATORS, MAX_OPERATORS, OperatorSpec, ZoneSpec, default_dir,
                                      default_venv, read_operator_specs)

__all__ = ["Devcloud", "DevcloudFailed", "DEFAULT_OPERATORS", "MAX_OPERATORS", "OperatorSpec", "ZoneSpec",
           "default_dir", "default_venv", "read_operator_specs"]
