"""nova-compute with ``nova.virt.yunshang_fake`` available: ``python -m yunshang_fakevirt.compute --config-file ...``."""
import sys

from nova.cmd.compute import main  # first: nova's own monkey patching happens on this import

import nova.virt  # noqa: E402
from yunshang_fakevirt import driver  # noqa: E402

sys.modules["nova.virt.yunshang_fake"] = driver
nova.virt.yunshang_fake = driver

if __name__ == "__main__":
    sys.exit(main())
