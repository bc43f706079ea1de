//go:build tools

// Package proxy pins the Traefik command this module builds (never compiled:
// the build tag keeps it out; `go mod tidy` reads its import).
package proxy

import _ "github.com/traefik/traefik/v3/cmd/traefik"
