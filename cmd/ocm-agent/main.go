// Command ocm-agent is the Open Cloud Mesh agent: a daemon that receives
// federated shares for one person ("ocm-agent serve"), and the CLI that
// drives it over its control socket.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/ocm-agent/ocm-agent/control"
)

func main() {
	root := newRoot()
	if err := root.ExecuteContext(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "ocm-agent:", err)
		if errors.Is(err, control.ErrNotRunning) {
			os.Exit(3)
		}
		os.Exit(1)
	}
}
