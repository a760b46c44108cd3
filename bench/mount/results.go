package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

type results struct {
	vals    map[string]map[string]float64
	notes   map[string][]string
	systems []string
}

func newResults() *results {
	return &results{vals: map[string]map[string]float64{}, notes: map[string][]string{}}
}

func (r *results) seen(sys string) {
	for _, s := range r.systems {
		if s == sys {
			return
		}
	}
	r.systems = append(r.systems, sys)
}

func (r *results) set(metric, sys string, v float64) {
	r.seen(sys)
	if r.vals[metric] == nil {
		r.vals[metric] = map[string]float64{}
	}
	r.vals[metric][sys] = v
}

// setBest keeps the best of repeated measurements.
func (r *results) setBest(metric, sys string, v float64) {
	old, ok := r.get(metric, sys)
	if ok {
		higher := false
		for _, m := range metricOrder {
			if m.name == metric {
				higher = m.higher
			}
		}
		if (higher && old >= v) || (!higher && old <= v) {
			return
		}
	}
	r.set(metric, sys, v)
}

func (r *results) note(sys, msg string) {
	r.seen(sys)
	for _, n := range r.notes[sys] {
		if n == msg {
			return
		}
	}
	r.notes[sys] = append(r.notes[sys], msg)
}

func (r *results) get(metric, sys string) (float64, bool) {
	v, ok := r.vals[metric][sys]
	return v, ok
}

// speedup is how many times better ours is than other on a metric (>1: ours
// better), whatever the metric's direction.
func speedup(ours, other float64, higher bool) float64 {
	if ours == 0 || other == 0 {
		return 0
	}
	if higher {
		return ours / other
	}
	return other / ours
}

func fmtVal(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	case v >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

func (r *results) print(w io.Writer, c config, sz sizes) {
	const ours = "ocm-agent"
	fmt.Fprintf(w, "\nocm-agent mount benchmark, scale %g: sequential read of %d MiB; %d random 4 KiB reads in %d MiB;\n",
		c.scale, sz.seq>>20, sz.randomReads, sz.rand>>20)
	fmt.Fprintf(w, "thumbnails: first 64 KiB of %d files of %d MiB; ls -l of %d entries; find over %d files in %d folders;\n",
		sz.thumbs, sz.thumbSize>>20, sz.wide, sz.treeDirs*sz.treePerDir, sz.treeDirs)
	fmt.Fprintf(w, "%d files of %d KiB written; %d MiB copied in. nginx WebDAV on loopback, bearer token.\n\n",
		sz.small, sz.smallSize>>10, sz.copyIn>>20)
	others := []string{}
	for _, s := range r.systems {
		if s != ours {
			others = append(others, s)
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	hdr := []string{"metric"}
	hdr = append(hdr, r.systems...)
	for _, o := range others {
		hdr = append(hdr, "vs "+o)
	}
	fmt.Fprintln(tw, strings.Join(hdr, "\t")+"\t")
	for _, m := range metricOrder {
		row := []string{m.name}
		for _, s := range r.systems {
			if v, ok := r.get(m.name, s); ok {
				row = append(row, fmtVal(v))
			} else {
				row = append(row, "-")
			}
		}
		ov, okOurs := r.get(m.name, ours)
		for _, o := range others {
			v, ok := r.get(m.name, o)
			if !ok || !okOurs || speedup(ov, v, m.higher) == 0 {
				row = append(row, "-")
				continue
			}
			row = append(row, fmt.Sprintf("%.2fx", speedup(ov, v, m.higher)))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
	}
	_ = tw.Flush()
	fmt.Fprintln(w, "\n\"vs X\": how many times better ocm-agent does than X (above 1: better; for times and bytes, X's figure divided by ours).")

	fmt.Fprintln(w, "\ntargets:")
	target := func(desc string, ok bool, have string) {
		state := "met"
		if !ok {
			state = "NOT met"
		}
		fmt.Fprintf(w, "  %-58s %-8s %s\n", desc, state, have)
	}
	if o, ok1 := r.get(mSeq, ours); ok1 {
		if cu, ok2 := r.get(mSeq, "curl"); ok2 {
			target("sequential read at least 90% of curl", o >= 0.9*cu, fmt.Sprintf("%.0f%% of curl", 100*o/cu))
		}
	}
	if o, ok1 := r.get(mLsCold, ours); ok1 {
		if cu, ok2 := r.get(mLsCold, "curl"); ok2 {
			target("cold ls -l within 1.3x of one curl PROPFIND", o <= 1.3*cu, fmt.Sprintf("%.2fx", o/cu))
		}
	}
	if o, ok := r.get(mLsWarm, ours); ok {
		target("warm ls -l under 0.1 s", o < 0.1, fmt.Sprintf("%.3f s", o))
	}
	if o, ok := r.get(mThumbX, ours); ok {
		target("thumbnails transfer under 2x the bytes asked", o < 2, fmt.Sprintf("%.2fx", o))
	}
	for _, rc := range []string{"rclone-off", "rclone-full"} {
		if o, ok1 := r.get(mSmallSrv, ours); ok1 {
			if v, ok2 := r.get(mSmallSrv, rc); ok2 {
				target("small-file writes at least 5x "+rc+"'s (on server)", v/o >= 5, fmt.Sprintf("%.2fx", v/o))
			}
		}
	}
	for _, s := range r.systems {
		for _, n := range r.notes[s] {
			fmt.Fprintf(w, "note: %s: %s\n", s, n)
		}
	}
}
