"""Per-operator content after the computes are ready: one aggregate per zone (an
availability zone holding that zone's compute host), flavors, the public "cirros"
image and the external network with a subnet. Idempotent.

Runs under the services venv (`yunshang devcloud up` calls it) with a JSON spec on stdin.
"""
import json
import sys

import openstack.config
import openstack.connection


def main() -> None:
    spec = json.load(sys.stdin)
    cfg = openstack.config.OpenStackConfig(config_files=[spec["clouds_file"]], load_envvars=False)
    c = openstack.connection.Connection(config=cfg.get_one(cloud=spec["cloud"]))
    # aggregates = availability zones
    aggs = {a.name: a for a in c.compute.aggregates()}
    for zone, host in spec["zones"]:
        a = aggs.get(zone) or c.compute.create_aggregate(name=zone, availability_zone=zone)
        if a.availability_zone != zone:
            c.compute.set_aggregate_metadata(a, {"availability_zone": zone})
        a = c.compute.get_aggregate(a.id)
        if host not in (a.hosts or []):
            c.compute.add_host_to_aggregate(a, host)
    # flavors
    have = {f.name for f in c.compute.flavors(is_public=None)}
    for name, vcpus, ram, disk in spec["flavors"]:
        if name not in have:
            c.compute.create_flavor(name=name, vcpus=vcpus, ram=ram, disk=disk, is_public=True)
    # image
    if not any(i.name == "cirros" for i in c.image.images()):
        c.image.create_image(name="cirros", filename=spec["image"], disk_format="qcow2", container_format="bare",
                             visibility="public", wait=True)
    # external network
    net = c.network.find_network(spec["external_network"])
    if net is None:
        net = c.network.create_network(name=spec["external_network"], is_router_external=True, is_shared=False,
                                       provider_network_type="flat", provider_physical_network=spec["physnet"])
    if not list(c.network.subnets(network_id=net.id)):
        c.network.create_subnet(network_id=net.id, name=spec["external_network"] + "-subnet", ip_version=4,
                                cidr=spec["cidr"], enable_dhcp=False)
    print("setup ok")


if __name__ == "__main__":
    main()
