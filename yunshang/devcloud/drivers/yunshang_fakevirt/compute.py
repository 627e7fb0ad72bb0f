"""nova-compute with ``nova.virt.yunshang_fake`` available: ``python -m yunshang_fakevirt.compute --config-file ...``.

One devcloud patch to nova, for scale only: every instance claim makes nova's resource tracker
fetch the allocations of EVERY consumer on the compute node (one Placement GET per instance,
``SchedulerReportClient.get_allocations_for_provider_tree``) although it uses them only when the
virt driver reshapes its provider tree or PCI devices are tracked in Placement. Neither ever
happens here (the fake driver does not reshape; ``[pci] report_in_placement`` is off), and with
one compute per zone holding hundreds of servers the fetch made a build storm O(n^2): 1,000
servers took hours. Here it returns no allocations unless PCI devices are tracked in Placement.
"""
import sys

from nova.cmd.compute import main  # first: nova's own monkey patching happens on this import

import nova.conf  # noqa: E402
import nova.virt  # noqa: E402
from nova.scheduler.client import report  # noqa: E402
from yunshang_fakevirt import driver  # noqa: E402

sys.modules["nova.virt.yunshang_fake"] = driver
nova.virt.yunshang_fake = driver


def _allocations_for_provider_tree(self, context, nodename):
    if nova.conf.CONF.pci.report_in_placement:
        return _original(self, context, nodename)
    return {}


_original = report.SchedulerReportClient.get_allocations_for_provider_tree
report.SchedulerReportClient.get_allocations_for_provider_tree = _allocations_for_provider_tree

if __name__ == "__main__":
    sys.exit(main())
