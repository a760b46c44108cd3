package main

import (
	"github.com/ocm-agent/ocm-agent/config"
	"github.com/ocm-agent/ocm-agent/control"
	"github.com/spf13/cobra"
	"os"
)

// socketFlag is the --socket of the client commands.
var socketFlag string

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "ocm-agent",
		Short: "Receive Open Cloud Mesh shares on your own machine",
		Long: `ocm-agent is a personal Open Cloud Mesh (OCM) endpoint. Nextcloud, ownCloud/oCIS,
CERNBox and other OCM servers can share files and folders with your OCM address; the
agent receives them, lets you accept or decline them, and shows accepted shares as
folders under one mount (~/OCM by default).

Run the daemon with 'ocm-agent serve'; the other commands talk to it through its
control socket.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&socketFlag, "socket", "", "control socket of the daemon (default $"+control.SocketEnv+" or "+config.DefaultSocket()+")")
	root.AddCommand(newServe(), newStatus(), newShares(), newVersion())
	for _, f := range extraCommands {
		root.AddCommand(f())
	}
	// Add cobra's own help and completion commands now, so that strict
	// reaches them too.
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	strict(root)
	return root
}

// extraCommands are added by the files that define them (doctor, init,
// invites, contacts, documentation generators), each in an init function.
var extraCommands []func() *cobra.Command

// client returns a control client for --socket, $OCM_AGENT_SOCKET or the default.
func client() *control.Client {
	path := socketFlag
	if path == "" {
		path = os.Getenv(control.SocketEnv)
	}
	if path == "" {
		path = config.DefaultSocket()
	}
	return control.NewClient(path)
}
