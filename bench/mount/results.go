package main

import (
	"fmt"
	"io"
	"runtime"
	"strings"
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

// row is one line of the table: a workload, its figure per system, and
// the target as a ratio to the reference column.
type row struct {
	short    string // the name in the line of ratios
	workload string
	cell     func(sys string) string // "" when not measured
	ref      string                  // the reference column's figure
	target   string
	ratio    string // ours against the reference, "" when unknown
	met      bool
}

// print writes the table of the issue "the mount at the HTTP ceiling":
// markdown, one column per system, the reference (curl, or the local disk
// for warm listings) first, then the target, the ratio and whether it is
// met; a last line sums up the ratios.
func (r *results) print(w io.Writer, c config, sz sizes) {
	const ours = "ocm-agent"
	get := r.get
	val := func(metric string) func(string) string {
		return func(sys string) string {
			if v, ok := get(metric, sys); ok {
				return fmtVal(v)
			}
			return ""
		}
	}
	rate := func(metric string, n float64) func(string) string { // n units in the measured seconds
		return func(sys string) string {
			if v, ok := get(metric, sys); ok && v > 0 {
				return fmtVal(n / v)
			}
			return ""
		}
	}
	// ratioRow fills ref, ratio and met from ours and ref figures of a
	// metric; higher: a throughput (ratio ours/ref in %), else a time
	// (ratio ours/ref as "x").
	ratioRow := func(rw row, metric, refSys string, higher bool, limit float64) row {
		o, ok1 := get(metric, ours)
		ref, ok2 := get(metric, refSys)
		if rw.ref == "" && ok2 {
			rw.ref = rw.cell(refSys)
		}
		if !ok1 || !ok2 || o == 0 || ref == 0 {
			return rw
		}
		q := o / ref
		if higher {
			rw.ratio, rw.met = fmt.Sprintf("%.0f%%", 100*q), q >= limit
		} else {
			rw.ratio, rw.met = fmt.Sprintf("%.2fx", q), q <= limit
		}
		return rw
	}
	var rows []row

	rows = append(rows, ratioRow(row{short: "seq read", workload: fmt.Sprintf("seq read %d MiB, MB/s", sz.seq>>20), cell: val(mSeq),
		target: ">= 90% of curl"}, mSeq, "curl", true, 0.9))
	rows = append(rows, ratioRow(row{short: "copy in", workload: fmt.Sprintf("copy in %d MiB, MB/s to close()", sz.copyIn>>20), cell: val(mCopyProg),
		target: ">= 80% of curl PUT"}, mCopyProg, "curl", true, 0.8))
	small := ratioRow(row{short: "small writes", workload: fmt.Sprintf("write %d new %d KiB files, files/s", sz.small, sz.smallSize>>10),
		cell: rate(mSmallProg, float64(sz.small)), target: ">= 60% of curl PUTs, all on the server at close"}, mSmallProg, "curl", false, 1/0.6)
	if small.ratio != "" { // a time ratio turned into a rate ratio
		o, _ := get(mSmallProg, ours)
		cu, _ := get(mSmallProg, "curl")
		srv, _ := get(mSmallSrv, ours)
		small.ratio = fmt.Sprintf("%.0f%%", 100*cu/o)
		small.met = cu/o >= 0.6 && srv <= o*1.05
	}
	rows = append(rows, small)
	rows = append(rows, ratioRow(row{short: "ls cold", workload: fmt.Sprintf("ls -l of %d files cold, s", sz.wide), cell: val(mLsCold),
		target: "<= 1.3x one PROPFIND"}, mLsCold, "curl", false, 1.3))
	rows = append(rows, ratioRow(row{short: "ls warm", workload: "ls -l warm, s (reference: local disk)", cell: val(mLsWarm),
		target: "<= 1.1x local disk"}, mLsWarm, "local", false, 1.1))
	thumbs := ratioRow(row{short: "thumbnails", workload: fmt.Sprintf("thumbnails: first %d KiB of %d files, s", sz.thumbReadBytes>>10, sz.thumbs),
		cell: func(sys string) string {
			t, ok := get(mThumbTime, sys)
			if !ok {
				return ""
			}
			if x, ok := get(mThumbX, sys); ok && sys != "curl" {
				return fmt.Sprintf("%s (bytes %.2fx)", fmtVal(t), x)
			}
			return fmtVal(t)
		}, target: "<= 2x curl, bytes <= 1.5x asked"}, mThumbTime, "curl", false, 2)
	if x, ok := get(mThumbX, ours); ok && thumbs.ratio != "" {
		thumbs.met = thumbs.met && x <= 1.5
	}
	rows = append(rows, thumbs)
	randRow := row{short: "random p50/p99", workload: fmt.Sprintf("%d random 4 KiB preads p50 / p99, ms", sz.randomReads),
		cell: func(sys string) string {
			a, ok1 := get(mRandP50, sys)
			b, ok2 := get(mRandP99, sys)
			if !ok1 || !ok2 {
				return ""
			}
			return fmtVal(a) + " / " + fmtVal(b)
		}, target: "p50 <= 1.5x, p99 <= 2x curl"}
	randRow.ref = randRow.cell("curl")
	if o50, ok := get(mRandP50, ours); ok {
		o99, _ := get(mRandP99, ours)
		c50, ok1 := get(mRandP50, "curl")
		c99, ok2 := get(mRandP99, "curl")
		if ok1 && ok2 && c50 > 0 && c99 > 0 {
			randRow.ratio = fmt.Sprintf("%.2fx / %.2fx", o50/c50, o99/c99)
			randRow.met = o50/c50 <= 1.5 && o99/c99 <= 2
		}
	}
	rows = append(rows, randRow)
	rows = append(rows, ratioRow(row{short: "walk+stat", workload: fmt.Sprintf("walk + stat %d files, s (reference: curl crawl, PROPFIND of every folder, 8 at once)", sz.treeDirs*sz.treePerDir),
		cell: val(mFind), target: "<= 1.5x the curl crawl"}, mFind, "curl", false, 1.5))
	var names []string
	for _, n := range sz.lsScale {
		names = append(names, fmt.Sprint(n))
	}
	scaleRow := row{short: "ls cold by size", workload: "ls -l cold of " + strings.Join(names, " / ") + " entries, s",
		cell: func(sys string) string {
			var parts []string
			for _, n := range sz.lsScale {
				v, ok := get(mLsScale(n), sys)
				if !ok {
					return ""
				}
				parts = append(parts, fmtVal(v))
			}
			return strings.Join(parts, " / ")
		}, target: "<= 1.3x one PROPFIND at each size (linear)"}
	scaleRow.ref = scaleRow.cell("curl")
	var qs []string
	scaleRow.met = true
	for _, n := range sz.lsScale {
		o, ok1 := get(mLsScale(n), ours)
		cu, ok2 := get(mLsScale(n), "curl")
		if !ok1 || !ok2 || cu == 0 {
			qs = nil
			break
		}
		qs = append(qs, fmt.Sprintf("%.2fx", o/cu))
		scaleRow.met = scaleRow.met && o/cu <= 1.3
	}
	if qs != nil {
		scaleRow.ratio = strings.Join(qs, " / ")
	} else {
		scaleRow.met = false
	}
	rows = append(rows, scaleRow)
	rss := row{short: "RSS/entry", workload: fmt.Sprintf("agent RSS per cached entry at %d entries, bytes", sz.lsScale[len(sz.lsScale)-1]),
		cell: val(mRSSEntry), target: "<= 300 bytes"}
	if v, ok := get(mRSSEntry, ours); ok {
		rss.ratio, rss.met = fmtVal(v)+" B", v <= 300
	}
	rows = append(rows, rss)
	rows = append(rows, ratioRow(row{short: "re-read cached", workload: fmt.Sprintf("re-read %d MiB from the content cache (read-only share), page cache dropped, MB/s (reference: the same file on local disk)", sz.seq>>20),
		cell: val(mCachedRead), target: ">= 80% of a local-disk read"}, mCachedRead, "local", true, 0.8))
	rows = append(rows, ratioRow(row{short: "pin", workload: fmt.Sprintf("pin a folder of %d files of %d KiB, s (reference: curl, a PROPFIND then the files %d at once)", sz.pinFiles, sz.pinSize>>10, pinParallel),
		cell: val(mPin), target: "<= 1.3x curl"}, mPin, "curl", false, 1.3))

	fmt.Fprintf(w, "\nocm-agent mount benchmark, scale %g; nginx WebDAV (dav-ext) on loopback with a bearer token; %d CPUs.\n\n", c.scale, runtime.NumCPU())
	var cols []string
	for _, s := range r.systems {
		if s != "curl" && s != "local" {
			cols = append(cols, s)
		}
	}
	hdr := []string{"workload", "curl / local"}
	for _, s := range cols {
		hdr = append(hdr, columnName(s))
	}
	hdr = append(hdr, "target", "ratio", "met?")
	fmt.Fprintln(w, "| "+strings.Join(hdr, " | ")+" |")
	fmt.Fprintln(w, "|"+strings.Repeat("---|", len(hdr)))
	var summary []string
	met, known := 0, 0
	for _, rw := range rows {
		cells := []string{rw.workload, dash(rw.ref)}
		for _, s := range cols {
			cells = append(cells, dash(rw.cell(s)))
		}
		state := "-"
		if rw.ratio != "" {
			known++
			state = "NO"
			if rw.met {
				met++
				state = "yes"
			}
			summary = append(summary, rw.short+" "+rw.ratio)
		}
		cells = append(cells, rw.target, dash(rw.ratio), state)
		fmt.Fprintln(w, "| "+strings.Join(cells, " | ")+" |")
	}
	for _, s := range r.systems {
		for _, n := range r.notes[s] {
			fmt.Fprintf(w, "note: %s: %s\n", s, n)
		}
	}
	fmt.Fprintf(w, "\nratios (ocm-agent against the reference; %d of %d targets met): %s\n", met, known, strings.Join(summary, ", "))
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// columnName is how a system is headed in the table.
func columnName(sys string) string {
	switch sys {
	case "rclone-off":
		return "rclone mount (off)"
	case "rclone-full":
		return "rclone mount (full)"
	case "rclone-mount2":
		return "rclone mount2 (full)"
	}
	return sys
}
