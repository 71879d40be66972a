//go:build tools

package tools

import (
	_ "github.com/fluxcd/helm-controller/api/v2"
	_ "github.com/fluxcd/notification-controller/api/v1"
)
