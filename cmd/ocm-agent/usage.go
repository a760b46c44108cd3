package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// usageError is a command line that cannot run as typed: an unknown
// command or flag, or a wrong number of arguments. It exits 2, so a script
// never takes a typo for success.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// strict makes every mistake on a command line a usage error. A group
// (a command that only holds subcommands) run bare prints its help; run
// with an unknown subcommand it fails and suggests the closest names.
// Cobra alone checks unknown subcommands only at the top level and
// answers a misspelt one below it with the group's help and success.
func strict(c *cobra.Command) {
	if c.HasSubCommands() && !c.Runnable() {
		c.SuggestionsMinimumDistance = 2
		c.Args = unknownSubcommand
		c.RunE = func(c *cobra.Command, _ []string) error { return c.Help() }
	}
	if check := c.Args; check != nil {
		c.Args = func(c *cobra.Command, args []string) error {
			if err := check(c, args); err != nil {
				var ue usageError
				if errors.As(err, &ue) {
					return err
				}
				return usageError{err}
			}
			return nil
		}
	}
	c.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	for _, sub := range c.Commands() {
		strict(sub)
	}
}

// unknownSubcommand accepts a group run bare and rejects any argument,
// which can only be a subcommand it does not have.
func unknownSubcommand(c *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], c.CommandPath())
	if s := c.SuggestionsFor(args[0]); len(s) > 0 {
		msg += "\n\nDid you mean this?\n\t" + strings.Join(s, "\n\t")
	}
	return usageError{errors.New(msg)}
}
