package sqlitejournal_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark/rollback"
	"github.com/bulwark-go/bulwark/rollback/sqlitejournal"
)

// BenchmarkDurableStep is the journal's cost per durable step of a
// workflow: Compensation.Before (one fsynced transaction) and
// Pending.Confirm (one transaction riding on the next fsync).
func BenchmarkDurableStep(b *testing.B) {
	for _, c := range []struct {
		name string
		cfg  sqlitejournal.Config
	}{{"sync=FULL", sqlitejournal.Config{}}, {"sync=NORMAL", sqlitejournal.Config{NoSync: true}}} {
		b.Run(c.name, func(b *testing.B) {
			j, err := sqlitejournal.Open(filepath.Join(b.TempDir(), "j.db"), c.cfg)
			require.NoError(b, err)
			defer j.Close()
			reg, comp := benchRegistry(b)
			ctx, sc, err := rollback.Begin(context.Background(), rollback.WithConfig(rollback.Config{
				Journal: j, Registry: reg, Owner: "bench", MaxCompensations: 1 << 30,
			}))
			require.NoError(b, err)
			b.ReportAllocs()
			for b.Loop() {
				p, err := comp.Before(ctx, benchArgs{Log: "x", Step: 1})
				if err != nil {
					b.Fatal(err)
				}
				if err := p.Confirm(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			require.NoError(b, sc.Commit())
		})
	}
}

// BenchmarkBareInsert is one autocommitted INSERT of a row like an
// entry's, on the same kind of database: the floor a durable step is
// compared with.
func BenchmarkBareInsert(b *testing.B) {
	for _, c := range []struct {
		name string
		cfg  sqlitejournal.Config
	}{{"sync=FULL", sqlitejournal.Config{}}, {"sync=NORMAL", sqlitejournal.Config{NoSync: true}}} {
		b.Run(c.name, func(b *testing.B) {
			j, err := sqlitejournal.Open(filepath.Join(b.TempDir(), "j.db"), c.cfg)
			require.NoError(b, err)
			defer j.Close()
			_, err = j.DB().Exec(`CREATE TABLE bare (id INTEGER PRIMARY KEY, name TEXT, args BLOB)`)
			require.NoError(b, err)
			args := []byte(`{"log":"x","step":1}`)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := j.DB().Exec(`INSERT INTO bare (name, args) VALUES (?, ?)`, "undo", args); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchArgs are the arguments of the benchmarks' compensation, the size
// of the crash tests' (a log path and a step).
type benchArgs struct {
	Log  string `json:"log"`
	Step int    `json:"step"`
}

// benchRegistry returns a registry holding a compensation that does
// nothing.
func benchRegistry(b *testing.B) (*rollback.Registry, rollback.Compensation[benchArgs]) {
	reg := rollback.NewRegistry()
	comp, err := rollback.Register(reg, "undo", func(context.Context, benchArgs) error { return nil })
	require.NoError(b, err)
	return reg, comp
}
