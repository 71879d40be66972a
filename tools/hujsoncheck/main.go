// Command hujsoncheck reads a policy file on stdin and exits non-zero unless Tailscale's own
// HuJSON parser accepts it; it prints the standard JSON it reads as. Kubani's tests use it to
// check `cluster-mgr tailnet policy` against the format's reference implementation.
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/tailscale/hujson"
)

func main() {
	input, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	standard, err := hujson.Standardize(input)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Stdout.Write(standard)
}
