package redisstore_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/idempotency"
	"github.com/bulwark-go/bulwark/idempotency/redisstore"
)

type charge struct{ ID string }

type refund struct{ RefundID string }

// TestReplayAsAnotherStructType is issue 14's item 7: a Charge replayed as
// a Refund used to come back as Refund{}, replayed, with no error.
func TestReplayAsAnotherStructType(t *testing.T) {
	s, _ := newStore(t, redisAddr(t), redisstore.Config{})
	m, err := idempotency.New(s, idempotency.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := idempotency.Do(ctx, m, "k", func(context.Context) (charge, error) { return charge{ID: "ch_1"}, nil }); err != nil {
		t.Fatal(err)
	}
	ran := false
	r := idempotency.Execute(ctx, m, "k", "", func(context.Context) (refund, error) { ran = true; return refund{}, nil })
	if !errors.Is(r.Err, idempotency.ErrDecode) || ran || r.Replayed {
		t.Fatalf("a charge replayed as a refund: %+v (ran %v); want ErrDecode, nothing run", r, ran)
	}
	// A type with the same fields is another type too.
	type chargeCopy struct{ ID string }
	_, err = idempotency.Do(ctx, m, "k", func(context.Context) (chargeCopy, error) { ran = true; return chargeCopy{}, nil })
	if !errors.Is(err, idempotency.ErrDecode) || ran {
		t.Fatalf("a charge replayed as a chargeCopy: %v (ran %v); want ErrDecode, nothing run", err, ran)
	}
	// The right type, and an interface, replay.
	if got, err := idempotency.Do(ctx, m, "k", func(context.Context) (charge, error) { ran = true; return charge{}, nil }); err != nil || got.ID != "ch_1" || ran {
		t.Fatalf("the charge replayed as a charge: %+v, %v (ran %v); want it", got, err, ran)
	}
	if got, err := idempotency.Do(ctx, m, "k", func(context.Context) (any, error) { ran = true; return nil, nil }); err != nil || ran {
		t.Fatalf("the charge replayed as an any: %+v, %v (ran %v); want it", got, err, ran)
	}
}

// TestGarbageRecords: records this package did not write (by hand, by
// another program, by an older version) give errors, never a zero value
// or a panic, and never run the operation.
func TestGarbageRecords(t *testing.T) {
	prefix := testPrefix()
	s, client := newStore(t, redisAddr(t), redisstore.Config{Prefix: prefix})
	m, err := idempotency.New(s, idempotency.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for _, tc := range []struct {
		name   string
		fields []any
		want   error
		text   string
	}{
		{"unknown field (untyped record)", []any{"state", "completed", "value", `{"ID":"ch_1","Amount":5}`}, idempotency.ErrDecode, `unknown field "Amount"`},
		{"trailing data", []any{"state", "completed", "value", `{"ID":"ch_1"} {}`}, idempotency.ErrDecode, "followed by more data"},
		{"corrupt JSON", []any{"state", "completed", "value", `{"ID":`}, idempotency.ErrDecode, "unexpected EOF"},
		{"empty value", []any{"state", "completed", "value", ``}, idempotency.ErrDecode, ""},
		{"wrong type", []any{"state", "completed", "value", `{"RefundID":"re_1"}`, "type", "example.com/billing.Refund"}, idempotency.ErrDecode, "stored value is of type example.com/billing.Refund"},
		{"neither value nor error", []any{"state", "completed"}, idempotency.ErrStore, "neither a value nor an error"},
		{"unknown state", []any{"state", "paused", "value", `{"ID":"ch_1"}`}, idempotency.ErrStore, `unknown state "paused"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := strings.ReplaceAll(tc.name, " ", "-")
			client.HSet(ctx, prefix+key, tc.fields...)
			client.PExpire(ctx, prefix+key, time.Minute)
			ran := false
			r := idempotency.Execute(ctx, m, key, "", func(context.Context) (charge, error) { ran = true; return charge{}, nil })
			if !errors.Is(r.Err, tc.want) || ran || r.Value != (charge{}) {
				t.Fatalf("replay: %+v (ran %v); want an error wrapping %v", r, ran, tc.want)
			}
			if !strings.Contains(r.Err.Error(), tc.text) {
				t.Fatalf("replay: %v; want an error containing %q", r.Err, tc.text)
			}
		})
	}
}

// TestStaleFieldsDoNotSurviveAClaim: a hash without a state is no record,
// and a claim over it starts afresh: a stale "error" field must not pass
// for the result of the operation that claims the key.
func TestStaleFieldsDoNotSurviveAClaim(t *testing.T) {
	prefix := testPrefix()
	s, client := newStore(t, redisAddr(t), redisstore.Config{Prefix: prefix})
	ctx := t.Context()
	client.HSet(ctx, prefix+"k", "error", "stale", "value", "stale")
	if _, claimed, err := s.Claim(ctx, "k", "owner", "", time.Minute); err != nil || !claimed {
		t.Fatalf("Claim over a stateless hash: claimed %v, %v", claimed, err)
	}
	if err := s.Complete(ctx, "k", "owner", idempotency.Outcome{Value: charge{ID: "ch_1"}}, time.Minute); err != nil {
		t.Fatal(err)
	}
	rec, _, err := s.Get(ctx, "k")
	if err != nil || rec.Err != nil {
		t.Fatalf("Get = %+v, %v; want the value, no error", rec, err)
	}
	if v, err := idempotency.ValueOf[charge](rec); err != nil || v.ID != "ch_1" {
		t.Fatalf("ValueOf = %+v, %v; want the charge", v, err)
	}
}

// TestEmptyErrorMessage: a stored error whose text is empty replays as an
// error with a message.
func TestEmptyErrorMessage(t *testing.T) {
	prefix := testPrefix()
	s, client := newStore(t, redisAddr(t), redisstore.Config{Prefix: prefix})
	m, err := idempotency.New(s, idempotency.Config{CacheErrors: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	_, err = idempotency.Do(ctx, m, "k", func(context.Context) (int, error) { return 0, idempotency.Permanent(errors.New("")) })
	if err == nil {
		t.Fatal("the operation's error was lost")
	}
	r := idempotency.Execute(ctx, m, "k", "", func(context.Context) (int, error) { return 1, nil })
	if !r.Replayed || r.Err == nil || r.Err.Error() != "idempotency: stored error with no message" {
		t.Fatalf("replay of an error without a message: %+v; want the stored error, with a message", r)
	}
	// Written by someone else.
	client.HSet(ctx, prefix+"other", "state", "completed", "error", "")
	client.PExpire(ctx, prefix+"other", time.Minute)
	r = idempotency.Execute(ctx, m, "other", "", func(context.Context) (int, error) { return 1, nil })
	if !r.Replayed || r.Err == nil || r.Err.Error() == "" {
		t.Fatalf("replay of a foreign error without a message: %+v; want an error with a message", r)
	}
}

// TestClaimWithoutExpiryIsBounded: an in-progress record without an expiry
// (an operator's PERSIST, an older or foreign writer) used to block its
// key forever. A claim that meets one gives it its own lease.
func TestClaimWithoutExpiryIsBounded(t *testing.T) {
	prefix := testPrefix()
	s, client := newStore(t, redisAddr(t), redisstore.Config{Prefix: prefix})
	ctx := t.Context()
	client.HSet(ctx, prefix+"k", "state", "in_progress", "owner", "gone", "fingerprint", "")
	const lease = 300 * time.Millisecond
	rec, claimed, err := s.Claim(ctx, "k", "owner", "", lease)
	if err != nil || claimed || rec.Owner != "gone" {
		t.Fatalf("Claim of a key held without expiry: claimed %v, owner %q, %v; want the holder's record", claimed, rec.Owner, err)
	}
	if rec.Expires.IsZero() || time.Until(rec.Expires) > lease {
		t.Fatalf("the held record expires at %v; want within the lease, %v", rec.Expires, lease)
	}
	if ttl := pttl(t, client, prefix+"k"); ttl <= 0 || ttl > lease.Milliseconds() {
		t.Fatalf("the held record expires in %d ms; want within the lease", ttl)
	}
	waitRedisTime(t, client, lease+50*time.Millisecond)
	if _, claimed, err := s.Claim(ctx, "k", "owner", "", lease); err != nil || !claimed {
		t.Fatalf("Claim after the lease: claimed %v, %v; want claimed", claimed, err)
	}
}
