package main

import (
	"context"
	"encoding/json"
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

func init() { extraCommands = append(extraCommands, newCache) }

// pollEvery is how often 'shares pin' asks for the progress of its job.
var pollEvery = 250 * time.Millisecond

func newPin() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "pin ID [PATH]",
		Short: "Keep a share, or a folder or file in it, on this device (readable offline, kept up to date)",
		Long: `Keep a share, or a folder or file in it, on this device: everything under it is
downloaded into the cache (with a progress bar), never evicted, refreshed in the
background when the server's files change, and readable when the server cannot be
reached. PATH is inside the share, "/"-separated. Interrupting the command does not stop
the download; 'ocm-agent shares show ID' shows how far it is.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := ""
			if len(args) == 2 {
				path = args[1]
			}
			c := client()
			job, err := c.Pin(cmd.Context(), args[0], path)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			p := newProgress(out, asJSON, isTerminal(out))
			for {
				p.show(job)
				if job.State != control.PinRunning {
					break
				}
				select {
				case <-cmd.Context().Done():
					return cmd.Context().Err()
				case <-time.After(pollEvery):
				}
				if job, err = c.PinJob(cmd.Context(), job.ID); err != nil {
					return err
				}
			}
			p.end(job)
			if job.State == control.PinFailed {
				return errors.New("pin " + what(job.Share, job.Path) + ": " + job.Error)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per progress line, the last one the summary")
	return cmd
}

func newUnpin() *cobra.Command {
	return &cobra.Command{
		Use:   "unpin ID [PATH]",
		Short: "Stop keeping a share (or the folder or file) on this device; its content becomes ordinary cache",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := ""
			if len(args) == 2 {
				path = args[1]
			}
			p, err := client().Unpin(cmd.Context(), args[0], path)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s is no longer kept on this device (%s stay in the cache until evicted).\n",
				what(clean(p.Name), p.Path), control.FormatBytes(p.Bytes))
			return nil
		},
	}
}

// what names a pin for people: the share, or the path in it.
func what(share, path string) string {
	if path == "" {
		return share
	}
	return share + ":" + clean(path)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progress prints a pin job's progress: a bar redrawn in place on a
// terminal, a line every few seconds elsewhere, or JSON lines.
type progress struct {
	w     io.Writer
	json  bool
	tty   bool
	last  time.Time
	lastS string
	drawn bool
}

// plainEvery spaces the plain progress lines.
const plainEvery = 2 * time.Second

func newProgress(w io.Writer, asJSON, tty bool) *progress {
	return &progress{w: w, json: asJSON, tty: tty && !asJSON}
}

func (p *progress) show(j control.PinJob) {
	if j.State != control.PinRunning {
		return // end prints the summary
	}
	line := progressLine(j)
	switch {
	case p.json:
		if line != p.lastS {
			writeJSONLine(p.w, j)
		}
	case p.tty:
		fmt.Fprintf(p.w, "\r\x1b[K%s %s", bar(j), line)
		p.drawn = true
	default:
		if line != p.lastS && time.Since(p.last) >= plainEvery {
			fmt.Fprintln(p.w, line)
			p.last = time.Now()
		}
	}
	p.lastS = line
}

func (p *progress) end(j control.PinJob) {
	if p.json {
		writeJSONLine(p.w, j)
		return
	}
	if p.drawn {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
	took := j.EndedAt.Sub(j.StartedAt).Round(100 * time.Millisecond)
	switch j.State {
	case control.PinDone:
		fmt.Fprintf(p.w, "Kept on this device: %s, %d files, %s (%s downloaded in %s).\n",
			what(j.Share, j.Path), j.Files, control.FormatBytes(j.Bytes), control.FormatBytes(j.Fetched), took)
	default:
		fmt.Fprintf(p.w, "Stopped at %d of %d files, %s of %s.\n", j.FilesDone, j.Files, control.FormatBytes(j.BytesDone), control.FormatBytes(j.Bytes))
	}
}

func writeJSONLine(w io.Writer, v any) {
	b, _ := json.Marshal(v)
	fmt.Fprintf(w, "%s\n", b)
}

// progressLine says how far a job is: files, bytes, rate, time left.
func progressLine(j control.PinJob) string {
	var b strings.Builder
	of := ""
	if !j.Listed {
		of = "+" // still listing: more may come
	}
	fmt.Fprintf(&b, "%d/%d%s files, %s of %s%s", j.FilesDone, j.Files, of, control.FormatBytes(j.BytesDone), control.FormatBytes(j.Bytes), of)
	if j.Rate > 0 {
		fmt.Fprintf(&b, ", %s/s", control.FormatBytes(int64(j.Rate)))
	}
	if j.Listed && j.Remaining > 0 {
		fmt.Fprintf(&b, ", %s left", (time.Duration(j.Remaining) * time.Second).Round(time.Second))
	}
	return b.String()
}

// barWidth is the width of the progress bar in characters.
const barWidth = 24

func bar(j control.PinJob) string {
	filled := 0
	if j.Listed && j.Bytes > 0 {
		filled = int(min(j.BytesDone, j.Bytes) * barWidth / j.Bytes)
	}
	return "[" + strings.Repeat("#", filled) + strings.Repeat("-", barWidth-filled) + "]"
}

func newCache() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cache",
		Short: "Show or free the content cache (files read and pinned shares kept on this device)",
	}
	var asJSON bool
	status := &cobra.Command{
		Use:   "status",
		Short: "Show what the cache holds, by share, and what is pinned",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := client().CacheStatus(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), st)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "Directory:\t%s\n", st.Dir)
			fmt.Fprintf(tw, "Held:\t%s in %d files (%s pinned), limit %s\n", control.FormatBytes(st.Bytes), st.Files,
				control.FormatBytes(st.PinnedBytes), control.FormatBytes(st.Limit))
			for _, s := range st.Shares {
				fmt.Fprintf(tw, "Share:\t%s (%s): %s in %d files, %s pinned\n", clean(s.Name), s.ID, control.FormatBytes(s.Bytes), s.Files, control.FormatBytes(s.PinnedBytes))
			}
			for _, p := range st.Pins {
				fmt.Fprintf(tw, "Pinned:\t%s\n", pinSummary(p))
			}
			return tw.Flush()
		},
	}
	status.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	var pinned bool
	clear := &cobra.Command{
		Use:   "clear",
		Short: "Empty the cache; pinned content stays unless --pinned",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := client().ClearCache(cmd.Context(), pinned)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Freed %s.\n", control.FormatBytes(r.Freed))
			if pinned {
				fmt.Fprintln(cmd.OutOrStdout(), "Pins stay: their content is downloaded again at the next refresh.")
			}
			return nil
		},
	}
	clear.Flags().BoolVar(&pinned, "pinned", false, "clear pinned content too (downloaded again at the next refresh)")
	cmd.AddCommand(status, clear)
	return cmd
}

// pinSummary describes a pin in one line.
func pinSummary(p control.Pin) string {
	state := "up to date"
	switch {
	case p.RunningJob != "":
		state = "downloading"
	case p.Offline:
		state = "offline, read from the cache"
	case !p.UpToDate:
		state = fmt.Sprintf("%d of %d files kept", p.Complete, p.Files)
	}
	if p.RefreshErr != "" {
		state += "; last refresh failed: " + p.RefreshErr
	}
	return fmt.Sprintf("%s: %d files, %s, %s", what(clean(p.Name), p.Path), p.Files, control.FormatBytes(p.Bytes), state)
}

// pinsOf returns the pins of each share by id; none when the daemon has
// no cache (no mount) or answers otherwise.
func pinsOf(ctx context.Context) map[string][]control.Pin {
	pins, err := client().Pins(ctx)
	if err != nil {
		return nil
	}
	m := map[string][]control.Pin{}
	for _, p := range pins {
		m[p.Share] = append(m[p.Share], p)
	}
	return m
}

// keptOf sums up a share's pins for 'shares list': "-" for none.
func keptOf(pins []control.Pin) string {
	if len(pins) == 0 {
		return "-"
	}
	var bytes int64
	fresh := true
	for _, p := range pins {
		bytes += p.Bytes
		fresh = fresh && p.UpToDate
	}
	what := "all"
	if len(pins) > 1 || pins[0].Path != "" {
		what = fmt.Sprintf("%d pinned", len(pins))
	}
	state := "up to date"
	if !fresh {
		state = "not up to date"
	}
	return fmt.Sprintf("%s, %s, %s", what, control.FormatBytes(bytes), state)
}
