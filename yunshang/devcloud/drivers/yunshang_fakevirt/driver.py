"""ZoneFakeDriver: FakeDriverWithoutFakeNodes with vcpus/memory_mb/local_gb from [yunshang_fake]."""
from oslo_config import cfg

import nova.conf
from nova.virt import fake

CONF = nova.conf.CONF
OPTS = [
    cfg.IntOpt("vcpus", default=fake.FakeDriver.vcpus, min=1, help="VCPU total reported to Placement"),
    cfg.IntOpt("memory_mb", default=fake.FakeDriver.memory_mb, min=1, help="MEMORY_MB total reported to Placement"),
    cfg.IntOpt("local_gb", default=fake.FakeDriver.local_gb, min=1, help="DISK_GB total reported to Placement"),
]
CONF.register_opts(OPTS, group="yunshang_fake")


class ZoneFakeDriver(fake.FakeDriverWithoutFakeNodes):
    def __init__(self, virtapi, read_only=False):
        # FakeDriver.__init__ sizes its Resources from these attributes.
        self.vcpus = CONF.yunshang_fake.vcpus
        self.memory_mb = CONF.yunshang_fake.memory_mb
        self.local_gb = CONF.yunshang_fake.local_gb
        super().__init__(virtapi, read_only)
