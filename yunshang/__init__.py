"""yunshang: the pure core of the prefecture cloud-center toolkit.

Nothing in this package (except ``yunshang.openstack`` and ``yunshang.devcloud``)
imports pulumi, ansible_runner, prometheus_client or click.
"""

__version__ = "0.1.0"
