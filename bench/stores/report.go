package main

import (
	"fmt"
	"regexp"
	"strings"
)

// report is the JSON the program writes and the source of its table.
type report struct {
	Date      string                  `json:"date"`
	N         uint64                  `json:"n"`
	Seed      uint64                  `json:"seed"`
	GoVersion string                  `json:"go_version"`
	CPUs      int                     `json:"cpus"`
	Order     []string                `json:"order"`
	Settings  map[string]string       `json:"settings"`
	Stores    map[string]*storeReport `json:"stores"`
}

func human(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2f M", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.0f k", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

func orDash(s string) string {
	if s == "0" || s == "0.0 MiB" {
		return "not run"
	}
	return s
}

func mib(kib int64) string { return fmt.Sprintf("%.1f MiB", float64(kib)/1024) }

func mb(b int64) string { return fmt.Sprintf("%.1f MB", float64(b)/1e6) }

// interesting picks what a store said on reopening that matters: recovery,
// replay, truncation, warnings and errors.
var interesting = regexp.MustCompile(`(?i)replay|recover|truncat|corrupt|error|warn|WAL|discard|open`)

func said(lines []string) string {
	var pick []string
	for _, l := range lines {
		if l = strings.TrimSpace(l); l != "" && interesting.MatchString(l) {
			if len(l) > 110 {
				l = l[:110] + "…"
			}
			pick = append(pick, strings.ReplaceAll(l, "|", "/"))
		}
		if len(pick) == 3 {
			break
		}
	}
	if len(pick) == 0 {
		return fmt.Sprintf("nothing (%d lines)", len(lines))
	}
	return strings.Join(pick, "<br>")
}

func (rep *report) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "N = %d profiles, %s, %s, %d CPUs, seed %d\n\n", rep.N, rep.Date, rep.GoVersion, rep.CPUs, rep.Seed)
	fmt.Fprintf(&b, "| | %s |\n|---|%s\n", strings.Join(rep.Order, " | "), strings.Repeat("---|", len(rep.Order)))
	row := func(name string, f func(s *storeReport) string) {
		cells := make([]string, len(rep.Order))
		for i, st := range rep.Order {
			cells[i] = f(rep.Stores[st])
		}
		fmt.Fprintf(&b, "| %s | %s |\n", name, strings.Join(cells, " | "))
	}
	perProfile := func(bytes int64, n uint64) string {
		if n == 0 {
			return "-"
		}
		return fmt.Sprintf("%.1f", float64(bytes)/float64(n))
	}
	n2 := rep.N + rep.N/100
	row("night 1: writes/s", func(s *storeReport) string { return human(s.Night1.Rate) })
	row("night 1: wall (open, write, close)", func(s *storeReport) string { return fmt.Sprintf("%.1f s", s.Night1.WallSeconds) })
	row("lookups/s, 1 goroutine", func(s *storeReport) string { return orDash(human(s.Get1.Rate)) })
	row("lookups/s, 4 goroutines", func(s *storeReport) string { return orDash(human(s.Get4.Rate)) })
	row("night 2: rows/s (lookup + 4% puts)", func(s *storeReport) string { return human(s.Night2.Rate) })
	row("night 2: wall (open, rows, close)", func(s *storeReport) string { return fmt.Sprintf("%.1f s", s.Night2.WallSeconds) })
	row("scan in key order: keys/s", func(s *storeReport) string { return human(s.Scan.Rate) })
	row("peak RSS night 1", func(s *storeReport) string { return mib(s.Night1.Mem.HWMKiB) })
	row("peak RSS night 2", func(s *storeReport) string { return mib(s.Night2.Mem.HWMKiB) })
	row("peak RSS lookups, 4 goroutines", func(s *storeReport) string { return orDash(mib(s.Get4.Mem.HWMKiB)) })
	row("RSS at end of night 2: anon / file-backed", func(s *storeReport) string {
		return mib(s.Night2.Mem.RSSAnonKiB) + " / " + mib(s.Night2.Mem.RSSFileKiB)
	})
	row("bytes/profile after night 1", func(s *storeReport) string { return perProfile(s.Disk1[0], rep.N) })
	row("bytes/profile after night 2", func(s *storeReport) string { return perProfile(s.Disk2[0], n2) })
	row("bytes/profile after manual compaction", func(s *storeReport) string {
		if s.DiskCompact == nil {
			return "n/a"
		}
		return perProfile(s.DiskCompact[0], n2)
	})
	row("night 2 (4% of keys put): files new / rewritten / gone", func(s *storeReport) string {
		d := s.Delta
		return fmt.Sprintf("%d (%s) / %d (%s) / %d (%s)", d.NewFiles, mb(d.NewBytes), d.RewrittenFiles, mb(d.RewrittenBytes), d.GoneFiles, mb(d.GoneBytes))
	})
	row("night 2: bytes to upload (new files + changed 4 KiB pages), % of store", func(s *storeReport) string {
		d := s.Delta
		up := d.NewBytes + d.ChangedPages
		pct := 0.0
		if d.AfterBytes > 0 {
			pct = 100 * float64(up) / float64(d.AfterBytes)
		}
		return fmt.Sprintf("%s (%.0f%%)", mb(up), pct)
	})
	row("after a kill: open time (3 kills)", func(s *storeReport) string {
		var v []string
		for _, k := range s.Kills {
			v = append(v, fmt.Sprintf("%.2f s", k.Verify.OpenSeconds))
		}
		return strings.Join(v, ", ")
	})
	row("after a kill: keys present / synced before the kill", func(s *storeReport) string {
		var v []string
		for _, k := range s.Kills {
			v = append(v, fmt.Sprintf("%s / %s", human(float64(k.Verify.Keys)), human(float64(k.Synced))))
		}
		return strings.Join(v, ", ")
	})
	row("after a kill: synced keys lost or wrong (must be 0)", func(s *storeReport) string {
		var v []string
		for _, k := range s.Kills {
			if k.Error != "" {
				v = append(v, "ERROR: "+k.Error)
				continue
			}
			v = append(v, fmt.Sprintf("%d", k.Verify.Lost+k.Verify.Wrong))
		}
		return strings.Join(v, ", ")
	})
	row("after a kill: what reopening said (1st kill)", func(s *storeReport) string {
		if len(s.Kills) == 0 {
			return "-"
		}
		out := said(s.Kills[0].Said)
		if s.Kills[0].Verify.CheckErr != "" {
			out += "<br>check: " + s.Kills[0].Verify.CheckErr
		}
		return out
	})
	b.WriteString("\nSettings:\n\n")
	for _, st := range rep.Order {
		fmt.Fprintf(&b, "- %s: %s\n", st, rep.Settings[st])
		if s := rep.Stores[st]; s.Err != "" {
			fmt.Fprintf(&b, "  - stopped: %s\n", s.Err)
		}
	}
	return b.String()
}
