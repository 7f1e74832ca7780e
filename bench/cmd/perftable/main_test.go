package main

import (
	"strings"
	"testing"
)

// sample is benchstat -format csv -col /lib output, trimmed to two
// benchmarks: one where bulwark's peers are gobreaker and failsafe, one
// where they are failsafe and backoff.
const sample = `goos: linux
goarch: amd64
pkg: github.com/bulwark-go/bulwark/bench
cpu: AMD EPYC
,bulwark,,gobreaker,,,,failsafe,,,,backoff,,,
,sec/op,CI,sec/op,CI,vs base,P,sec/op,CI,vs base,P,sec/op,CI,vs base,P
BreakerClosed-2,1e-07,40%,3e-07,38%,+200.00%,p=0.002 n=6,1.5e-06,35%,+1400.00%,p=0.002 n=6
RetryFirstTry-2,2e-08,12%,,,,,2e-06,38%,+9900.00%,p=0.002 n=6,2.1e-08,74%,~,p=0.589 n=6
geomean,1e-07,,3e-07,,+200.00%,,2e-06,,+1000.00%,,2.1e-08,,~,

,bulwark,,gobreaker,,,,failsafe,,,,backoff,,,
,B/op,CI,B/op,CI,vs base,P,B/op,CI,vs base,P,B/op,CI,vs base,P
BreakerClosed-2,16,0%,0,0%,-100.00%,p=0.002 n=6,416,0%,+2500.00%,p=0.002 n=6
RetryFirstTry-2,0,0%,,,,,512,0%,?,p=0.002 n=6,168,0%,?,p=0.002 n=6
geomean,,,,,,,,,,,,,,

,bulwark,,gobreaker,,,,failsafe,,,,backoff,,,
,allocs/op,CI,allocs/op,CI,vs base,P,allocs/op,CI,vs base,P,allocs/op,CI,vs base,P
BreakerClosed-2,1,0%,0,0%,-100.00%,p=0.002 n=6,15,0%,+1400.00%,p=0.002 n=6
RetryFirstTry-2,0,0%,,,,,16,0%,?,p=0.002 n=6,4,0%,?,p=0.002 n=6
geomean,,,,,,,,,,,,,,
`

func TestRun(t *testing.T) {
	var out strings.Builder
	if err := run(strings.NewReader(sample), &out); err != nil {
		t.Fatal(err)
	}
	want := `| benchmark | bulwark | gobreaker | failsafe | backoff |
|---|---:|---:|---:|---:|
| BreakerClosed-2 | 100.0 ns, 16 B, 1 allocs | 300.0 ns, 0 B, 0 allocs (×3.00) | 1.50 µs, 416 B, 15 allocs (×15.00) |  |
| RetryFirstTry-2 | 20.0 ns, 0 B, 0 allocs |  | 2.00 µs, 512 B, 16 allocs (×100.00) | 21.0 ns, 168 B, 4 allocs (×1.05 ~) |
`
	if got := out.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestRunRejectsOtherInput(t *testing.T) {
	var out strings.Builder
	err := run(strings.NewReader("BenchmarkX-2 100 10 ns/op\n"), &out)
	if err == nil {
		t.Fatal("plain benchmark output was accepted")
	}
	if !strings.Contains(err.Error(), "-format csv") {
		t.Errorf("the error %q does not say what input is expected", err)
	}
}
