package main

import "github.com/pulumi/pulumi/sdk/v3/go/common/tokens"

// tokenType and tokenMember build "openstack:<module>/<file>:<Name>" tokens from "module/file:Name".
func tokenType(s string) tokens.Type { return tokens.Type("openstack:" + s) }

func tokenMember(s string) tokens.ModuleMember { return tokens.ModuleMember("openstack:" + s) }
