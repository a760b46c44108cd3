package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/ocm-agent/ocm-agent/agent"
	"github.com/ocm-agent/ocm-agent/config"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func newServe() *cobra.Command {
	cfg := config.Default()
	var file string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the agent: the OCM endpoint, the control socket and the mount",
		Long: `Run the agent in the foreground until interrupted (SIGINT or SIGTERM).

Settings come from the configuration file (` + config.DefaultFile() + ` by default,
see ocm-agent.toml(5)); every key can be overridden by the flag of the same name.
With no file and no flags the agent listens on 127.0.0.1:9200 and keeps its state in
$XDG_STATE_HOME/ocm-agent.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			keep := map[string]bool{}
			cmd.Flags().Visit(func(f *pflag.Flag) { keep[f.Name] = true })
			path, optional := file, false
			if path == "" {
				path, optional = config.DefaultFile(), true
			}
			final, err := config.Load(path, cfg, keep, optional)
			if err != nil {
				return err
			}
			if err := final.Finish(); err != nil {
				return err
			}
			if err := final.CheckRoot(os.Geteuid()); err != nil {
				return err
			}
			log := newLogger(os.Stderr, final.LogFormat, final.LogLevel)
			if err := agent.HardenProcess(); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			d, err := agent.Start(ctx, final, log)
			if err != nil {
				return err
			}
			return d.Serve(ctx)
		},
	}
	cmd.Flags().StringVarP(&file, "config", "c", "", "configuration file (default "+config.DefaultFile()+"; missing is fine)")
	config.BindFlags(cmd.Flags(), &cfg)
	return cmd
}

func newLogger(w io.Writer, format, level string) *slog.Logger {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(strings.ToUpper(level))); err != nil {
		lv = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func newVersion() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), "ocm-agent", agent.Version)
		},
	}
}
