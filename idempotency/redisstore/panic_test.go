package redisstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/idempotency"
	"github.com/bulwark-go/bulwark/idempotency/redisstore"
)

// panickyCodec is JSON, except that it panics on values (or into types)
// it does not expect, as a codec with an unchecked type assertion does.
type panickyCodec struct{}

type unexpected struct{ X int }

func (panickyCodec) Marshal(v any) ([]byte, error) {
	if _, ok := v.(unexpected); ok {
		panic("codec: cannot marshal")
	}
	return json.Marshal(v)
}

func (panickyCodec) Unmarshal(data []byte, v any) error {
	if string(data) == "13" {
		panic("codec: cannot unmarshal")
	}
	return json.Unmarshal(data, v)
}

// recovered runs f and returns what it panicked with.
func recovered(f func()) (p any) {
	defer func() { p = recover() }()
	f()
	return nil
}

// TestPanickingCodecStore: a codec's panic goes up through the Store
// unchanged, and leaves the store usable: a panic in Marshal releases the
// claim (the key is free), one in Unmarshal changes nothing.
func TestPanickingCodecStore(t *testing.T) {
	s, _ := newStore(t, redisAddr(t), redisstore.Config{Codec: panickyCodec{}})
	ctx := t.Context()
	if _, _, err := s.Claim(ctx, "k", "owner", "", time.Minute); err != nil {
		t.Fatal(err)
	}
	p := recovered(func() { _ = s.Complete(ctx, "k", "owner", idempotency.Outcome{Value: unexpected{1}}, time.Minute) })
	if p != "codec: cannot marshal" {
		t.Fatalf("Complete with a panicking codec panicked with %v; want the codec's panic", p)
	}
	if rec, found, err := s.Get(ctx, "k"); err != nil || found {
		t.Fatalf("after the panic: %+v, found %v, %v; want the claim released", rec, found, err)
	}
	if _, claimed, err := s.Claim(ctx, "k", "owner-2", "", time.Minute); err != nil || !claimed {
		t.Fatalf("Claim after the panic: claimed %v, %v", claimed, err)
	}
	if err := s.Complete(ctx, "k", "owner-2", idempotency.Outcome{Value: 13}, time.Minute); err != nil {
		t.Fatalf("Complete after the panic: %v", err)
	}
	rec, _, err := s.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	// A panic while decoding goes up through ValueOf, and changes nothing.
	p = recovered(func() { _, _ = idempotency.ValueOf[int](rec) })
	if p != "codec: cannot unmarshal" {
		t.Fatalf("ValueOf with a panicking codec panicked with %v; want the codec's panic", p)
	}
	if rec, found, err := s.Get(ctx, "k"); err != nil || !found || rec.State != idempotency.Completed {
		t.Fatalf("after the decoding panic: %+v, found %v, %v; want the record", rec, found, err)
	}
}

// TestPanickingCodecManager: a codec that panics when the Manager records
// or replays a result: the panic reaches the caller, and the key is not
// wedged: the next call runs (after a Marshal panic, nothing was recorded)
// or gets the panic again (the codec cannot decode the stored value), and
// other keys work.
func TestPanickingCodecManager(t *testing.T) {
	s, _ := newStore(t, redisAddr(t), redisstore.Config{Codec: panickyCodec{}})
	m, err := idempotency.New(s, idempotency.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	runs := 0
	fn := func(context.Context) (unexpected, error) { runs++; return unexpected{runs}, nil }
	for i := range 2 {
		p := recovered(func() { _, _ = idempotency.Do(ctx, m, "k", fn) })
		if p != "codec: cannot marshal" {
			t.Fatalf("call %d: panicked with %v; want the codec's panic", i, p)
		}
	}
	if runs != 2 {
		t.Fatalf("the operation ran %d times; want twice (nothing was recorded, and the claim was released)", runs)
	}
	// The key and the store work.
	if v, err := idempotency.Do(ctx, m, "k", func(context.Context) (int, error) { return 4, nil }); err != nil || v != 4 {
		t.Fatalf("the key with a value the codec takes: %v, %v", v, err)
	}
	if v, err := idempotency.Do(ctx, m, "other", func(context.Context) (int, error) { return 13, nil }); err != nil || v != 13 {
		t.Fatalf("another key: %v, %v", v, err)
	}
	// A panic while replaying reaches the caller; the next replay (of a
	// value the codec takes) works.
	for i := range 2 {
		p := recovered(func() {
			_, _ = idempotency.Do(ctx, m, "other", func(context.Context) (int, error) { return 0, errors.New("ran") })
		})
		if p != "codec: cannot unmarshal" {
			t.Fatalf("replay %d: panicked with %v; want the codec's panic", i, p)
		}
	}
	if v, err := idempotency.Do(ctx, m, "k", func(context.Context) (int, error) { return 0, errors.New("ran") }); err != nil || v != 4 {
		t.Fatalf("replay of the key: %v, %v; want 4", v, err)
	}
}

// panickyError is an error whose Error method panics.
type panickyError struct{}

func (panickyError) Error() string { panic("Error panicked") }

// TestPanickingErrorStore: the store calls a stored error's Error method
// for its message; a panic there reaches the caller and frees the key.
func TestPanickingErrorStore(t *testing.T) {
	s, _ := newStore(t, redisAddr(t), redisstore.Config{})
	ctx := t.Context()
	if _, _, err := s.Claim(ctx, "k", "owner", "", forever); err != nil {
		t.Fatal(err)
	}
	p := recovered(func() { _ = s.Complete(ctx, "k", "owner", idempotency.Outcome{Err: panickyError{}}, time.Minute) })
	if p != "Error panicked" {
		t.Fatalf("Complete with a panicking error panicked with %v; want the error's panic", p)
	}
	if _, claimed, err := s.Claim(ctx, "k", "owner-2", "", time.Minute); err != nil || !claimed {
		t.Fatalf("Claim after the panic: claimed %v, %v; want the key free", claimed, err)
	}
}
