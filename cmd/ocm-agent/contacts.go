package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/ocm-agent/ocm-agent/control"
	"github.com/spf13/cobra"
)

func init() { extraCommands = append(extraCommands, newContacts) }

func newContacts() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "contacts",
		Short: "List or remove contacts (people you exchanged invites with)",
	}
	var asJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List your contacts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := client().Contacts(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), l)
			}
			if len(l) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "No contacts yet. Accept an invite ('ocm-agent invites accept') or make one ('ocm-agent invites create').")
				return nil
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tADDRESS\tNAME\tEMAIL\tHOW\tADDED\tSTATE")
			for _, c := range l {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, clean(c.Address), orDash(clean(c.Name)), orDash(clean(c.Email)),
					howAdded(c.Source), c.CreatedAt.Local().Format("2006-01-02 15:04"), c.State)
			}
			return tw.Flush()
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	remove := &cobra.Command{
		Use:   "remove ID",
		Short: "Remove a contact (they are not told; their shares then count as a stranger's)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client().RemoveContact(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Contact %s removed.\n", contactLabel(c))
			return nil
		},
	}
	cmd.AddCommand(list, remove)
	return cmd
}

func howAdded(source string) string {
	switch source {
	case control.SourceAcceptedTheirInvite:
		return "you accepted their invite"
	case control.SourceAcceptedOurInvite:
		return "they accepted your invite"
	}
	return source
}
