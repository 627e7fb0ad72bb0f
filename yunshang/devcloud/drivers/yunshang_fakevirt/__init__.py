"""A nova fake virt driver whose inventory comes from config (one compute per zone). Test-only (devcloud).

nova's FakeDriver reports hard-coded class attributes (1000 vCPU, 800000 MB,
600000 GB). ``ZoneFakeDriver`` reads ``[yunshang_fake] vcpus, memory_mb,
local_gb`` from the nova-compute config instead, so each zone's Placement
inventory matches the catalog. nova loads drivers only as ``nova.virt.<name>``:
run ``python -m yunshang_fakevirt.compute`` (it registers the driver module as
``nova.virt.yunshang_fake``) with ``compute_driver = yunshang_fake.ZoneFakeDriver``.
"""
