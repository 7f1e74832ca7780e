package redisstore_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/idempotency"
	"github.com/bulwark-go/bulwark/idempotency/redisstore"
	"github.com/redis/go-redis/v9"
)

// The benchmarks run against the tests' Redis server (a local
// redis-server on loopback, or BULWARK_REDIS_ADDR): their times are
// mostly round trips, which BenchmarkRoundTrip measures alone. Records
// expire a minute after the benchmark wrote them.

const benchTTL = time.Minute

// benchReceipt is a typical small result.
type benchReceipt struct {
	ID     string `json:"id"`
	Cents  int64  `json:"cents"`
	Status string `json:"status"`
}

var benchValue = benchReceipt{ID: "rcpt_0123456789", Cents: 4200, Status: "captured"}

// BenchmarkRoundTrip is the floor: one PING through the same client.
func BenchmarkRoundTrip(b *testing.B) {
	_, client := newStore(b, redisAddr(b), redisstore.Config{})
	ctx := context.Background()
	for b.Loop() {
		if err := client.Ping(ctx).Err(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkClaimComplete is a first execution's store work: a claim and
// a completion (two round trips), on a new key each time.
func BenchmarkClaimComplete(b *testing.B) {
	s, _ := newStore(b, redisAddr(b), redisstore.Config{})
	ctx := context.Background()
	i := 0
	for b.Loop() {
		i++
		key := strconv.Itoa(i)
		if _, claimed, err := s.Claim(ctx, key, "owner", "", time.Minute); err != nil || !claimed {
			b.Fatalf("claimed %v, error %v", claimed, err)
		}
		if err := s.Complete(ctx, key, "owner", idempotency.Outcome{Value: benchValue}, benchTTL); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkClaimCompleteParallel(b *testing.B) {
	s, _ := newStore(b, redisAddr(b), redisstore.Config{})
	ctx := context.Background()
	var n atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			key := strconv.FormatInt(n.Add(1), 10)
			if _, claimed, err := s.Claim(ctx, key, "owner", "", time.Minute); err != nil || !claimed {
				b.Errorf("claimed %v, error %v", claimed, err)
				return
			}
			if err := s.Complete(ctx, key, "owner", idempotency.Outcome{Value: benchValue}, benchTTL); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkReplay is a duplicate's store work: one claim that finds the
// completed record, and decoding its value.
func BenchmarkReplay(b *testing.B) {
	s, _ := newStore(b, redisAddr(b), redisstore.Config{})
	ctx := context.Background()
	if _, _, err := s.Claim(ctx, "done", "owner", "", time.Minute); err != nil {
		b.Fatal(err)
	}
	if err := s.Complete(ctx, "done", "owner", idempotency.Outcome{Value: benchValue}, benchTTL); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		rec, claimed, err := s.Claim(ctx, "done", "other", "", time.Minute)
		if err != nil || claimed {
			b.Fatalf("claimed %v, error %v", claimed, err)
		}
		if v, err := idempotency.ValueOf[benchReceipt](rec); err != nil || v != benchValue {
			b.Fatalf("replayed %v, %v", v, err)
		}
	}
}

// BenchmarkManagerFirstExecution is idempotency.Do on a new key each time:
// the store's claim and completion plus the Manager's own work.
func BenchmarkManagerFirstExecution(b *testing.B) {
	s, _ := newStore(b, redisAddr(b), redisstore.Config{})
	m, err := idempotency.New(s, idempotency.Config{TTL: benchTTL})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	op := func(context.Context) (benchReceipt, error) { return benchValue, nil }
	i := 0
	for b.Loop() {
		i++
		if _, err := idempotency.Do(ctx, m, strconv.Itoa(i), op); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkManagerReplay is idempotency.Do on a completed key.
func BenchmarkManagerReplay(b *testing.B) {
	s, _ := newStore(b, redisAddr(b), redisstore.Config{})
	m, err := idempotency.New(s, idempotency.Config{TTL: benchTTL})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	op := func(context.Context) (benchReceipt, error) { return benchValue, nil }
	if _, err := idempotency.Do(ctx, m, "done", op); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		r := idempotency.Execute(ctx, m, "done", "", op)
		if r.Err != nil || !r.Replayed {
			b.Fatalf("%+v", r)
		}
	}
}

func BenchmarkManagerReplayParallel(b *testing.B) {
	s, _ := newStore(b, redisAddr(b), redisstore.Config{})
	m, err := idempotency.New(s, idempotency.Config{TTL: benchTTL})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	op := func(context.Context) (benchReceipt, error) { return benchValue, nil }
	if _, err := idempotency.Do(ctx, m, "done", op); err != nil {
		b.Fatal(err)
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if r := idempotency.Execute(ctx, m, "done", "", op); r.Err != nil || !r.Replayed {
				b.Errorf("%+v", r)
				return
			}
		}
	})
}

// BenchmarkExtendMany10000 is one lease-renewal round of a Manager running
// 10,000 calls: ExtendMany of 10,000 claims, over a *redis.Client (one
// script per 1,000 claims) and over another client (pipelines of one
// script per claim, as on Redis Cluster).
func BenchmarkExtendMany10000(b *testing.B) {
	for _, bc := range []struct {
		name string
		wrap func(*redis.Client) redis.UniversalClient
	}{
		{"script", func(c *redis.Client) redis.UniversalClient { return c }},
		{"pipeline", func(c *redis.Client) redis.UniversalClient { return otherClient{c} }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			client := newClient(b, redisAddr(b))
			prefix := testPrefix()
			b.Cleanup(func() { deleteKeys(client, prefix) })
			s, err := redisstore.New(bc.wrap(client), redisstore.Config{Prefix: prefix})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = s.Close() })
			ctx := context.Background()
			claims := make([]idempotency.ClaimRef, 10_000)
			for i := range claims {
				claims[i] = idempotency.ClaimRef{Key: strconv.Itoa(i), Owner: "owner-" + strconv.Itoa(i)}
				if _, claimed, err := s.Claim(ctx, claims[i].Key, claims[i].Owner, "", time.Minute); err != nil || !claimed {
					b.Fatalf("claimed %v, error %v", claimed, err)
				}
			}
			for b.Loop() {
				errs, err := s.ExtendMany(ctx, claims, time.Minute)
				if err != nil {
					b.Fatal(err)
				}
				for i, err := range errs {
					if err != nil {
						b.Fatalf("claim %d: %v", i, err)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/round")
		})
	}
}
