// Command perftable turns benchstat's CSV output for the side-by-side
// benchmarks (benchstat -format csv -col /lib) into the Markdown table of
// docs/performance.md: one line per benchmark, one column per library,
// each cell the median time, bytes and allocations per operation, and, for
// the other libraries, how many times longer than bulwark's their median
// time is.
//
// Usage:
//
//	benchstat -format csv -col /lib raw.txt | perftable > results.md
package main

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

func main() {
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "perftable:", err)
		os.Exit(1)
	}
}

// units are the metrics perftable reads, in the order a cell shows them.
var units = []string{"sec/op", "B/op", "allocs/op"}

// measure is one library's median of one metric for one benchmark, and
// benchstat's verdict on its difference from the base column ("~" when it
// is not significant; empty for the base itself).
type measure struct {
	median float64
	delta  string
}

// results holds every median: benchmark → unit → library.
type results struct {
	libs  []string // in benchstat's column order; the first is the base
	names []string // benchmarks in their order of appearance
	m     map[string]map[string]map[string]measure
}

func run(r io.Reader, w io.Writer) error {
	res, err := parse(r)
	if err != nil {
		return err
	}
	return res.write(w)
}

// parse reads benchstat's CSV: for each unit, a line naming the columns'
// libraries, a line naming what each column holds (the unit, CI, vs base,
// P), then one line per benchmark and a geomean line.
func parse(r io.Reader) (*results, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	res := &results{m: make(map[string]map[string]map[string]measure)}
	var libsLine []string // the last line that named libraries
	var unit string       // the unit of the table being read; "" outside one
	var cols map[string]int
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		switch {
		case len(rec) < 2 || rec[0] == "geomean":
			unit = ""
		case rec[0] == "" && isUnit(rec[1]):
			unit, cols = rec[1], make(map[string]int)
			for i, f := range rec {
				if f == unit && i < len(libsLine) && libsLine[i] != "" {
					cols[libsLine[i]] = i
					res.addLib(libsLine[i])
				}
			}
		case rec[0] == "":
			libsLine = rec
		case unit != "":
			if err := res.addRow(rec, unit, cols); err != nil {
				return nil, err
			}
		}
	}
	if len(res.names) == 0 {
		return nil, errors.New("no benchmark found in the input (want benchstat -format csv -col /lib)")
	}
	return res, nil
}

func isUnit(s string) bool {
	for _, u := range units {
		if s == u {
			return true
		}
	}
	return false
}

func (res *results) addLib(lib string) {
	for _, l := range res.libs {
		if l == lib {
			return
		}
	}
	res.libs = append(res.libs, lib)
}

// addRow records one benchmark's medians of unit. A library without a
// result for the benchmark has empty fields and is skipped.
func (res *results) addRow(rec []string, unit string, cols map[string]int) error {
	name := rec[0]
	byUnit, ok := res.m[name]
	if !ok {
		byUnit = make(map[string]map[string]measure)
		res.m[name] = byUnit
		res.names = append(res.names, name)
	}
	byLib := make(map[string]measure)
	byUnit[unit] = byLib
	for lib, i := range cols {
		if i >= len(rec) || rec[i] == "" {
			continue
		}
		v, err := strconv.ParseFloat(rec[i], 64)
		if err != nil {
			return fmt.Errorf("benchmark %s, %s of %s: %w", name, unit, lib, err)
		}
		mm := measure{median: v}
		if i != 1 && i+2 < len(rec) { // after a median and its CI: vs base
			mm.delta = rec[i+2]
		}
		byLib[lib] = mm
	}
	return nil
}

func (res *results) write(w io.Writer) error {
	var b strings.Builder
	b.WriteString("| benchmark |")
	for _, lib := range res.libs {
		fmt.Fprintf(&b, " %s |", lib)
	}
	b.WriteString("\n|---|")
	for range res.libs {
		b.WriteString("---:|")
	}
	b.WriteString("\n")
	base := res.libs[0]
	for _, name := range res.names {
		fmt.Fprintf(&b, "| %s |", name)
		for _, lib := range res.libs {
			b.WriteString(" " + res.cell(name, lib, base) + " |")
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// cell formats one library's result for one benchmark: "time, bytes,
// allocs", and for a library other than base its time as a multiple of
// base's (×N: N times longer; "~" when benchstat finds no significant
// difference).
func (res *results) cell(name, lib, base string) string {
	byUnit := res.m[name]
	t, ok := byUnit["sec/op"][lib]
	if !ok {
		return ""
	}
	s := fmt.Sprintf("%s, %s B, %s allocs", duration(t.median),
		count(byUnit["B/op"][lib].median), count(byUnit["allocs/op"][lib].median))
	if lib == base {
		return s
	}
	bt, ok := byUnit["sec/op"][base]
	if !ok || bt.median == 0 {
		return s
	}
	ratio := fmt.Sprintf("×%.2f", t.median/bt.median)
	if t.delta == "~" {
		ratio += " ~"
	}
	return s + " (" + ratio + ")"
}

// duration formats seconds with three significant digits in ns or µs.
func duration(sec float64) string {
	ns := sec * 1e9
	if ns >= 1000 {
		return strconv.FormatFloat(ns/1000, 'f', 2, 64) + " µs"
	}
	return strconv.FormatFloat(ns, 'f', 1, 64) + " ns"
}

// count formats a per-operation count, which benchstat reports as a median
// that may be fractional.
func count(v float64) string {
	return strconv.FormatFloat(v, 'f', -1, 64)
}
