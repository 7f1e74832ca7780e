package redisstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/idempotency"
	"github.com/bulwark-go/bulwark/idempotency/redisstore"
)

// versionedCodec is JSON behind a version tag, as a codec that must stay
// readable across deployments might be.
type versionedCodec struct{}

func (versionedCodec) Marshal(v any) ([]byte, error) {
	data, err := json.Marshal(v)
	return append([]byte("v1:"), data...), err
}

func (versionedCodec) Unmarshal(data []byte, v any) error {
	rest, ok := strings.CutPrefix(string(data), "v1:")
	if !ok {
		return errors.New("not a v1 record")
	}
	return json.Unmarshal([]byte(rest), v)
}

// failingCodec cannot encode anything.
type failingCodec struct{}

func (failingCodec) Marshal(any) ([]byte, error) { return nil, errors.New("codec broke") }
func (failingCodec) Unmarshal([]byte, any) error { return errors.New("codec broke") }

type receipt struct {
	ID    string `json:"id"`
	Cents int64  `json:"cents"`
}

func TestCustomCodec(t *testing.T) {
	prefix := testPrefix()
	s, client := newStore(t, redisAddr(t), redisstore.Config{Prefix: prefix, Codec: versionedCodec{}})
	m, err := idempotency.New(s, idempotency.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	runs := 0
	charge := func(context.Context) (receipt, error) {
		runs++
		return receipt{"r-1", 4200}, nil
	}
	first, err := idempotency.Do(ctx, m, "order-1", charge)
	if err != nil {
		t.Fatal(err)
	}
	if got := client.HGet(ctx, prefix+"order-1", "value").Val(); got != `v1:{"id":"r-1","cents":4200}` {
		t.Fatalf("stored value %q; want the codec's encoding", got)
	}
	again := idempotency.Execute(ctx, m, "order-1", "", charge)
	if again.Err != nil || !again.Replayed || again.Value != first || runs != 1 {
		t.Fatalf("duplicate got %+v after %d runs; want %+v replayed, 1 run", again, runs, first)
	}
}

func TestValueThatDoesNotEncode(t *testing.T) {
	ctx := t.Context()
	for _, tc := range []struct {
		name  string
		codec redisstore.Codec
		value any
		want  string
	}{
		{"JSON of a channel", nil, make(chan int), `redisstore: complete "k": encode chan int: json: unsupported type`},
		{"failing codec", failingCodec{}, 7, `redisstore: complete "k": encode int: codec broke`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prefix := testPrefix()
			s, client := newStore(t, redisAddr(t), redisstore.Config{Prefix: prefix, Codec: tc.codec})
			if _, _, err := s.Claim(ctx, "k", "owner", "", time.Minute); err != nil {
				t.Fatal(err)
			}
			err := s.Complete(ctx, "k", "owner", idempotency.Outcome{Value: tc.value}, time.Minute)
			wantErrContaining(t, "Complete", err, tc.want)
			if state := client.HGet(ctx, prefix+"k", "state").Val(); state != "in_progress" {
				t.Fatalf("after a failed encoding the record is %q; want it still in progress", state)
			}
			// The Manager reports it: the value comes back, not recorded.
			m, err := idempotency.New(s, idempotency.Config{})
			if err != nil {
				t.Fatal(err)
			}
			v, err := idempotency.Do(ctx, m, "k2", func(context.Context) (any, error) { return tc.value, nil })
			if !errors.Is(err, idempotency.ErrNotRecorded) || !strings.Contains(err.Error(), "redisstore: complete") {
				t.Fatalf("Do with a value that does not encode: %v; want ErrNotRecorded naming the store", err)
			}
			if v == nil {
				t.Fatal("Do with a value that does not encode lost the value")
			}
		})
	}
}

func TestReplayAsAnotherType(t *testing.T) {
	s, _ := newStore(t, redisAddr(t), redisstore.Config{})
	m, err := idempotency.New(s, idempotency.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := idempotency.Do(ctx, m, "k", func(context.Context) (string, error) { return "text", nil }); err != nil {
		t.Fatal(err)
	}
	ran := false
	_, err = idempotency.Do(ctx, m, "k", func(context.Context) (int, error) { ran = true; return 1, nil })
	if !errors.Is(err, idempotency.ErrDecode) || ran {
		t.Fatalf("replay of a string as an int: %v (ran %v); want ErrDecode, nothing run", err, ran)
	}
}
