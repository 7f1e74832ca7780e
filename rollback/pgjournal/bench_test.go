package pgjournal_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark/rollback"
	"github.com/bulwark-go/bulwark/rollback/pgjournal"
)

// BenchmarkDurableStep is the journal's cost per durable step over
// loopback: Compensation.Before and Pending.Confirm, one statement (one
// round trip) each, in workflows of three steps (each workflow's Begin
// and Finish, two more statements, are spread over its steps).
func BenchmarkDurableStep(b *testing.B) {
	pool := open(b)
	reg, comp := benchRegistry(b)
	cfg := rollback.Config{Journal: pgjournal.New(pool), Registry: reg, Owner: "bench"}
	var (
		ctx context.Context
		sc  *rollback.Scope
		err error
	)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i%3 == 0 {
			if sc != nil {
				require.NoError(b, sc.Commit())
			}
			ctx, sc, err = rollback.Begin(context.Background(), rollback.WithConfig(cfg))
			require.NoError(b, err)
		}
		i++
		p, err := comp.Before(ctx, benchArgs{Log: "x", Step: i})
		if err != nil {
			b.Fatal(err)
		}
		if err := p.Confirm(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	require.NoError(b, sc.Commit())
}

// BenchmarkBareInsert is one autocommitted INSERT of a row like an
// entry's: one round trip, the floor a durable step is compared with.
func BenchmarkBareInsert(b *testing.B) {
	pool := open(b)
	ctx := context.Background()
	_, err := pool.Exec(ctx, `DROP TABLE IF EXISTS bare; CREATE TABLE bare (id bigserial PRIMARY KEY, name text, args bytea)`)
	require.NoError(b, err)
	args := []byte(`{"log":"x","step":1}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := pool.Exec(ctx, `INSERT INTO bare (name, args) VALUES ($1, $2)`, "undo", args); err != nil {
			b.Fatal(err)
		}
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
