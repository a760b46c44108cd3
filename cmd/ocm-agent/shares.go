package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/ocm-agent/ocm-agent/control"
	"github.com/spf13/cobra"
)

func newStatus() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show whether the daemon runs, its OCM address, mount and secret store",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := client().Status(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return writeJSON(out, st)
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "OCM address:\t%s\n", st.Address)
			fmt.Fprintf(tw, "Endpoint:\t%s/ocm (listening on %s)\n", st.PublicURL, st.Listen)
			fmt.Fprintf(tw, "Mount:\t%s (%s)\n", orDash(st.Mount), st.MountState)
			secrets := st.SecretsBackend
			if st.SecretsReason != "" {
				secrets += " (" + st.SecretsReason + ")"
			}
			fmt.Fprintf(tw, "Secrets:\t%s\n", secrets)
			fmt.Fprintf(tw, "Pending shares:\t%d\n", st.Pending)
			writeCertStatus(tw, st)
			fmt.Fprintf(tw, "Running since:\t%s (version %s)\n", st.StartedAt.Local().Format(time.RFC1123), st.Version)
			for _, u := range st.PendingUploads {
				fmt.Fprintf(tw, "Not uploaded yet:\t%s\n", u)
			}
			for _, u := range st.Unreachable {
				fmt.Fprintf(tw, "Unreachable:\t%s (%s) since %s: %s\n", clean(u.Name), u.ID, u.Since.Local().Format("2006-01-02 15:04:05"), u.Error)
			}
			for _, u := range st.Offline {
				fmt.Fprintf(tw, "Offline:\t%s (%s) since %s: files kept on this device and cached ones are read from the cache\n", clean(u.Name), u.ID, u.Since.Local().Format("2006-01-02 15:04:05"))
			}
			for _, c := range st.Conflicts {
				fmt.Fprintf(tw, "Conflict:\t%s\n", c)
			}
			for _, l := range st.LostFound {
				fmt.Fprintf(tw, "Lost+found (crash leftover, yours to check):\t%s\n", l)
			}
			for _, k := range st.KeptWrites {
				fmt.Fprintf(tw, "Writes kept:\t%s\n", k)
			}
			for _, e := range st.Errors {
				fmt.Fprintf(tw, "Recent error:\t%s\n", e)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// writeCertStatus shows the certificate the agent gets itself (acme).
func writeCertStatus(w io.Writer, st control.Status) {
	switch {
	case st.CertName == "":
	case st.CertNotAfter.IsZero():
		fmt.Fprintf(w, "Certificate:\t%s: none yet (asking the ACME CA)\n", st.CertName)
	default:
		fmt.Fprintf(w, "Certificate:\t%s from %q, valid until %s (%d days left)\n", st.CertName, st.CertIssuer,
			st.CertNotAfter.Local().Format(time.RFC1123), int(time.Until(st.CertNotAfter).Hours()/24))
	}
	if st.CertError != "" {
		fmt.Fprintf(w, "Certificate error:\t%s\n", st.CertError)
	}
}

func newShares() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "shares",
		Short: "List, show, accept, decline, remove or pin received shares",
	}
	var asJSON, all bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List received shares (pending, accepted and failed; --all for every state)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			shares, err := client().Shares(cmd.Context(), all)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), shares)
			}
			if len(shares) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "No shares yet. Your OCM address is shown by 'ocm-agent status'.")
				return nil
			}
			unreachable, offline := map[string]time.Time{}, map[string]time.Time{}
			if st, err := client().Status(cmd.Context()); err == nil {
				for _, u := range st.Unreachable {
					unreachable[u.ID] = u.Since
				}
				for _, u := range st.Offline {
					offline[u.ID] = u.Since
				}
			}
			pins := pinsOf(cmd.Context())
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSTATE\tTYPE\tNAME\tFROM\tRECEIVED\tON THIS DEVICE")
			for _, s := range shares {
				state := s.State
				if since, ok := unreachable[s.ID]; ok {
					state += " (unreachable since " + since.Local().Format("2006-01-02 15:04") + ")"
				} else if since, ok := offline[s.ID]; ok {
					state += " (offline since " + since.Local().Format("2006-01-02 15:04") + ")"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, state, kindOf(s), clean(s.Name), senderOf(s), s.CreatedAt.Local().Format("2006-01-02 15:04"), keptOf(pins[s.ID]))
			}
			return tw.Flush()
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	list.Flags().BoolVar(&all, "all", false, "include declined and removed shares")

	var showJSON bool
	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show one share in detail",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := client().Share(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if showJSON {
				return writeJSON(cmd.OutOrStdout(), s)
			}
			printShare(cmd.OutOrStdout(), s)
			for _, p := range pinsOf(cmd.Context())[s.ID] {
				fmt.Fprintf(cmd.OutOrStdout(), "Kept on this device:  %s\n", pinSummary(p))
			}
			return nil
		},
	}
	show.Flags().BoolVar(&showJSON, "json", false, "print JSON")

	cmd.AddCommand(list, show, newPin(), newUnpin(),
		shareAction("accept", "Accept a pending share: it appears in the mount and the sender is told"),
		shareAction("decline", "Decline a pending share: its secret is deleted and the sender is told"),
		shareAction("remove", "Remove a share you accepted: it leaves the mount and its secret is deleted"),
		shareAction("retry", "Try a revoked or failed share again: it returns to the mount if its server serves it"))
	return cmd
}

func shareAction(action, short string) *cobra.Command {
	return &cobra.Command{
		Use:   action + " ID",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := client().ShareAction(cmd.Context(), args[0], action)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Share %s (%s from %s) is now %s.\n", s.ID, clean(s.Name), senderOf(s), s.State)
			return nil
		},
	}
}

func printShare(w io.Writer, s control.Share) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", k, v)
		}
	}
	row("ID", s.ID)
	row("Name", clean(s.Name))
	row("State", s.State)
	if !s.UnreachableSince.IsZero() {
		row("Unreachable", "since "+s.UnreachableSince.Local().Format(time.RFC1123)+" ("+s.UnreachableError+"); reads fail until its server answers again")
	}
	row("Error", s.Error)
	row("Type", kindOf(s))
	if len(s.NotUploaded) > 0 {
		row("Not uploaded", keptMessage(len(s.NotUploaded), s.KeptIn))
		for _, u := range s.NotUploaded {
			row("  file", clean(u))
		}
	}
	from := senderOf(s)
	if !s.FromContact {
		from += " (not in your contacts)"
	}
	row("From", from)
	row("Sender ID", clean(s.Sender))
	row("Owner", clean(s.Owner))
	row("Server", s.Peer)
	row("Description", clean(s.Description))
	row("Permissions", strings.Join(s.Permissions, ", "))
	row("Requirements", strings.Join(s.Requirements, ", "))
	row("Protocols", strings.Join(s.Protocols, ", "))
	row("WebDAV URI", s.WebDAVURI)
	if !s.Expiration.IsZero() {
		row("Expires", s.Expiration.Local().Format(time.RFC1123))
	}
	signed := "no"
	if s.SignedBy != "" {
		signed = s.SignedBy
	}
	row("Signed", signed)
	row("Received", s.CreatedAt.Local().Format(time.RFC1123))
	row("Sender notified", s.NotifyState)
	row("Changed by sender", clean(s.Changed))
	row("Provider ID", s.ProviderID)
	tw.Flush()
}

// kindOf is folder or file as best known (Nextcloud calls folders "file";
// the mount finds out).
func kindOf(s control.Share) string {
	if s.Kind != "" {
		return s.Kind
	}
	return s.ResourceType
}

// keptMessage says that n files written into a share are kept unsent.
func keptMessage(n int, dir string) string {
	if n == 1 {
		return "1 file written here was not uploaded; it is kept in " + dir
	}
	return fmt.Sprintf("%d files written here were not uploaded; they are kept in %s", n, dir)
}

// senderOf names the sender for lists: "Name <user@host>", or, when the
// user part is an opaque id (a reva UUID, opencloudmesh-go's long base64
// ids) that means nothing to a person, "Name (host)"; the id itself is
// in 'shares show'.
func senderOf(s control.Share) string {
	name := clean(s.SenderDisplayName)
	if user, host, ok := splitAddress(s.Sender); ok && opaqueID(user) {
		if name == "" {
			name = "unnamed user"
		}
		return name + " (" + clean(host) + ")"
	}
	if name != "" {
		return name + " <" + clean(s.Sender) + ">"
	}
	return clean(s.Sender)
}

func splitAddress(a string) (user, host string, ok bool) {
	i := strings.LastIndexByte(a, '@')
	if i <= 0 {
		return "", "", false
	}
	return a[:i], a[i+1:], true
}

// opaqueID reports whether a user id is machine-made: a UUID, or a long
// run of base64 characters.
func opaqueID(u string) bool {
	if len(u) == 36 && strings.Count(u, "-") == 4 && strings.Trim(strings.ToLower(u), "0123456789abcdef-") == "" {
		return true
	}
	return len(u) >= 32 && strings.Trim(u, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/") == ""
}

// clean keeps a peer-chosen string from moving the terminal's cursor or
// changing its colours.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		// Format characters (bidi overrides, zero-width marks) would
		// make the text read differently from what it is.
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || unicode.Is(unicode.Cf, r) {
			return '?'
		}
		return r
	}, s)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
