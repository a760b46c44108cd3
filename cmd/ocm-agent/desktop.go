package main

import (
	"fmt"

	"github.com/ocm-agent/ocm-agent/bookmarks"
	"github.com/ocm-agent/ocm-agent/config"
	"github.com/spf13/cobra"
)

func init() { extraCommands = append(extraCommands, newUninstallDesktop) }

func newUninstallDesktop() *cobra.Command {
	var file, mount, stateDir string
	cmd := &cobra.Command{
		Use:   "uninstall-desktop",
		Short: "Take the shares folder out of the file managers' sidebars",
		Long: `Remove the bookmark of the shares folder (the key mount) that the agent added at
its first start: from the GTK bookmarks ($XDG_CONFIG_HOME/gtk-3.0/bookmarks and
gtk-4.0/bookmarks, read by Nautilus, Thunar and PCManFM) and from the KDE places
($XDG_DATA_HOME/user-places.xbel, read by Dolphin). Every other bookmark stays as
it was. The state directory remembers the removal, so the agent does not add the
bookmark again; to have it back, add it in the file manager.

It works whether the daemon runs or not, and prints each bookmark it removed.
The setting file-manager-bookmark = false also removes it, at the next start.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, _, err := loadConfig(file)
			if err != nil {
				// The defaults still name the usual folder and state.
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: %v\nusing the default mount and state directory\n", err)
			}
			if cmd.Flags().Changed("mount") {
				cfg.Mount = mount
			}
			if cmd.Flags().Changed("state-dir") {
				cfg.StateDir = stateDir
			}
			removed, err := bookmarks.Uninstall(bookmarks.UserFiles(), cfg.Mount, bookmarks.RecordPath(cfg.StateDir))
			out := cmd.OutOrStdout()
			for _, c := range removed {
				fmt.Fprintf(out, "removed the bookmark of %s from %s\n", c.Dir, c.File)
			}
			if len(removed) == 0 && err == nil {
				fmt.Fprintln(out, "no file manager had a bookmark of the shares folder")
			}
			return err
		},
	}
	cmd.Flags().StringVarP(&file, "config", "c", "", "configuration file (default "+config.DefaultFile()+")")
	cmd.Flags().StringVar(&mount, "mount", "", "the shares folder, if not the key mount of the configuration")
	cmd.Flags().StringVar(&stateDir, "state-dir", "", "the state directory, if not the key state-dir of the configuration")
	return cmd
}
