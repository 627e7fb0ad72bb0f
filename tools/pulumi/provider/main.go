// Command pulumi-resource-openstack is the Pulumi resource provider for OpenStack that yunshang
// builds here: the upstream Terraform provider (terraform-provider-openstack) served through the
// upstream Pulumi Terraform bridge, with yunshang's own mapping of the Terraform resources to the
// type tokens of the pulumi_openstack Python package pinned in pyproject.toml.
//
// Why not upstream's provider module (github.com/pulumi/pulumi-openstack/provider/v5): it is not
// served by the Go module proxy this project builds from (403 "not available"), while the two
// modules it is made of are. The mapping below covers the resource kinds yunshang's program and
// hand-written tenant stacks use; the tokens and property names are those of pulumi_openstack
// (the bridge derives property names from the Terraform schema the same way upstream does).
package main

import (
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"
	shimv2 "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfshim/sdk-v2"
	"github.com/terraform-provider-openstack/terraform-provider-openstack/v3/openstack"
)

// Version is set with -ldflags "-X main.Version=5.5.1" (the pulumi_openstack version it serves).
var Version = "0.0.0-dev"

// resources maps Terraform resource names to pulumi_openstack type tokens (module/member).
var resources = map[string]string{
	"openstack_identity_project_v3":            "identity/project:Project",
	"openstack_identity_user_v3":               "identity/user:User",
	"openstack_identity_role_v3":               "identity/role:Role",
	"openstack_identity_role_assignment_v3":    "identity/roleAssignment:RoleAssignment",
	"openstack_compute_quotaset_v2":            "compute/quotaSetV2:QuotaSetV2",
	"openstack_networking_quota_v2":            "networking/quotaV2:QuotaV2",
	"openstack_blockstorage_quotaset_v3":       "blockstorage/quoteSetV3:QuoteSetV3",
	"openstack_compute_flavor_v2":              "compute/flavor:Flavor",
	"openstack_compute_flavor_access_v2":       "compute/flavorAccess:FlavorAccess",
	"openstack_compute_keypair_v2":             "compute/keypair:Keypair",
	"openstack_compute_servergroup_v2":         "compute/serverGroup:ServerGroup",
	"openstack_compute_instance_v2":            "compute/instance:Instance",
	"openstack_compute_volume_attach_v2":       "compute/volumeAttach:VolumeAttach",
	"openstack_networking_network_v2":          "networking/network:Network",
	"openstack_networking_subnet_v2":           "networking/subnet:Subnet",
	"openstack_networking_router_v2":           "networking/router:Router",
	"openstack_networking_router_interface_v2": "networking/routerInterface:RouterInterface",
	"openstack_networking_secgroup_v2":         "networking/secGroup:SecGroup",
	"openstack_networking_secgroup_rule_v2":    "networking/secGroupRule:SecGroupRule",
	"openstack_networking_port_v2":             "networking/port:Port",
	"openstack_networking_floatingip_v2":       "networking/floatingIp:FloatingIp",
	"openstack_blockstorage_volume_v3":         "blockstorage/volume:Volume",
}

// dataSources maps Terraform data sources to pulumi_openstack function tokens.
var dataSources = map[string]string{
	"openstack_identity_role_v3":       "identity/getRole:getRole",
	"openstack_identity_project_v3":    "identity/getProject:getProject",
	"openstack_identity_auth_scope_v3": "identity/getAuthScope:getAuthScope",
	"openstack_networking_network_v2":  "networking/getNetwork:getNetwork",
	"openstack_networking_subnet_v2":   "networking/getSubnet:getSubnet",
	"openstack_compute_flavor_v2":      "compute/getFlavor:getFlavor",
	"openstack_images_image_v2":        "images/getImage:getImage",
}

func providerInfo() tfbridge.ProviderInfo {
	info := tfbridge.ProviderInfo{
		P:           shimv2.NewProvider(openstack.Provider()),
		Name:        "openstack",
		Version:     Version,
		Description: "OpenStack resources for yunshang, served through the Pulumi Terraform bridge.",
		Resources:   map[string]*tfbridge.ResourceInfo{},
		DataSources: map[string]*tfbridge.DataSourceInfo{},
	}
	for tf, tok := range resources {
		info.Resources[tf] = &tfbridge.ResourceInfo{Tok: tokenType(tok)}
	}
	for tf, tok := range dataSources {
		info.DataSources[tf] = &tfbridge.DataSourceInfo{Tok: tokenMember(tok)}
	}
	// The subnet's TF "allocation_pool" block list is "allocationPools" in pulumi_openstack.
	info.Resources["openstack_networking_subnet_v2"].Fields = map[string]*tfbridge.SchemaInfo{
		"allocation_pool": {Name: "allocationPools"},
	}
	return info
}

func main() {
	tfbridge.Main("openstack", Version, providerInfo(), nil)
}
