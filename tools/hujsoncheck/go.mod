module kubani.dev/tools/hujsoncheck

go 1.26.8

require github.com/tailscale/hujson v0.0.0-20260302212456-ecc657c15afd
