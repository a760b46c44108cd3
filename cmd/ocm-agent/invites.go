package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ocm-agent/ocm-agent/control"
	"github.com/spf13/cobra"
)

func init() { extraCommands = append(extraCommands, newInvites) }

func newInvites() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "invites",
		Short: "Make, list and withdraw invites, and accept invites from others",
		Long: `Invites are how two people who know each other establish trust over Open Cloud Mesh:
one makes an invite and sends it by any other means (mail, chat); the other accepts it on
their own server. Both then have each other as contacts, and shares between them are
expected rather than unsolicited (see accept-from = "contacts").`,
	}
	cmd.AddCommand(newInvitesAccept(), newInvitesCreate(), newInvitesList(), newInvitesRevoke())
	return cmd
}

func newInvitesAccept() *cobra.Command {
	var token, provider string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "accept [INVITE]",
		Short: "Accept an invite someone sent you",
		Long: `Accept an invite someone sent you: the inviting server is told, and the person who
invited you becomes a contact.

INVITE may be any form you were given: the invite code (a long base64url string),
token@provider, or a link with token and providerDomain parameters. Without INVITE and
without --token/--provider the invite is read from standard input, which keeps it out of
the process list:

    ocm-agent invites accept < invite.txt`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body := control.AcceptInviteRequest{Token: token, Provider: provider}
			switch {
			case len(args) == 1 && (token != "" || provider != ""):
				return errors.New("give either INVITE or --token and --provider, not both")
			case len(args) == 1:
				body.Invite = args[0]
			case token == "" && provider == "":
				inv, err := readInvite(cmd)
				if err != nil {
					return err
				}
				body.Invite = inv
			case token == "" || provider == "":
				return errors.New("--token and --provider go together")
			}
			c, err := client().AcceptInvite(cmd.Context(), body)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), c)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Invite accepted: %s is now in your contacts.\n", contactLabel(c))
			return nil
		},
	}
	cmd.Flags().StringVar(&token, "token", "", "the invite token, when given apart from the provider")
	cmd.Flags().StringVar(&provider, "provider", "", "the inviting server (host[:port]), with --token")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the new contact as JSON")
	return cmd
}

// readInvite reads the invite from standard input: the first non-empty
// line, prompting when it is a terminal.
func readInvite(cmd *cobra.Command) (string, error) {
	in := cmd.InOrStdin()
	if f, ok := in.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			fmt.Fprint(cmd.ErrOrStderr(), "Paste the invite you received and press Enter: ")
		}
	}
	sc := bufio.NewScanner(io.LimitReader(in, 16<<10))
	sc.Buffer(make([]byte, 4096), 16<<10)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			return line, nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("reading the invite: %w", err)
	}
	return "", errors.New("no invite given: pass it as an argument, with --token and --provider, or on standard input")
}

func newInvitesCreate() *cobra.Command {
	var note, expires string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Make an invite to send to someone",
		Long: `Make an invite to send to someone by mail, chat or any other way. It works once, until it
expires (7 days unless --expires says otherwise). The invite code is the canonical form
every OCM server accepts; the link opens a page on this agent's public endpoint that shows
the code and what to do with it, and agents like this one accept the link itself.

The invite is shown only now: this agent keeps only a hash of it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ci, err := client().CreateInvite(cmd.Context(), control.InviteRequest{Note: note, Expires: expires})
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), ci)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "Invite %s made; it works once, until %s.\n\n", ci.Invite.ID, ci.Invite.ExpiresAt.Local().Format(time.RFC1123))
			fmt.Fprintf(w, "Invite code:\n  %s\n\nLink:\n  %s\n\n", ci.InviteString, ci.Link)
			fmt.Fprintln(w, "Send one of them to the person you invite. Withdraw it with 'ocm-agent invites revoke "+ci.Invite.ID+"'.")
			return nil
		},
	}
	cmd.Flags().StringVar(&note, "note", "", "a note to remember whom the invite is for (kept here, never sent)")
	cmd.Flags().StringVar(&expires, "expires", "7d", "how long the invite can be accepted: days (7d) or a duration (36h, 90m)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newInvitesList() *cobra.Command {
	var all, asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the invites you made (open ones; --all for every state)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := client().Invites(cmd.Context())
			if err != nil {
				return err
			}
			if !all {
				open := l[:0]
				for _, inv := range l {
					if inv.State == control.InviteOpen {
						open = append(open, inv)
					}
				}
				l = open
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), l)
			}
			if len(l) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "No open invites. Make one with 'ocm-agent invites create'.")
				return nil
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSTATE\tEXPIRES\tACCEPTED BY\tNOTE")
			for _, inv := range l {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", inv.ID, inv.State, inv.ExpiresAt.Local().Format("2006-01-02 15:04"),
					orDash(inv.AcceptedBy), clean(inv.Note))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "include accepted, withdrawn and expired invites")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newInvitesRevoke() *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "Withdraw an invite nobody has accepted yet",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			inv, err := client().RevokeInvite(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Invite %s withdrawn: it can no longer be accepted.\n", inv.ID)
			return nil
		},
	}
}

func contactLabel(c control.Contact) string {
	if c.Name != "" && c.Name != c.Address {
		return clean(c.Name) + " <" + clean(c.Address) + ">"
	}
	return clean(c.Address)
}
