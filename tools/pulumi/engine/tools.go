//go:build tools

// Package tools pins the main packages this module builds (go mod tidy keeps their requirements).
package tools

import (
	_ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
)
