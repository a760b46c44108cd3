// Command ocm-agent is the Open Cloud Mesh agent: a daemon that receives
// federated shares for one person ("ocm-agent serve"), and the CLI that
// drives it over its control socket.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/ocm-agent/ocm-agent/control"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// Exit statuses besides 0 (success) and 1 (any other error).
const (
	exitUsage      = 2 // the command line cannot run as typed
	exitNotRunning = 3 // the daemon is not running
)

// run runs one command line and returns its exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRoot()
	if args == nil {
		args = []string{} // nil would make cobra read os.Args
	}
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, "ocm-agent:", err)
	var ue usageError
	switch {
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
		return exitUsage
	case errors.Is(err, control.ErrNotRunning):
		return exitNotRunning
	}
	return 1
}
