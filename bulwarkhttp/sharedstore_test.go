package bulwarkhttp_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark/bulwarkhttp"
	"github.com/bulwark-go/bulwark/idempotency"
	"github.com/bulwark-go/bulwark/pipeline"
)

// jsonStore is an in-memory store that encodes values as JSON and hands
// them back with a decoder, as a store shared by processes (Redis) does.
type jsonStore struct{ *idempotency.MemoryStore }

type encoded []byte

func (s jsonStore) Complete(ctx context.Context, key, owner string, out idempotency.Outcome, ttl time.Duration) error {
	if out.Value != nil {
		b, err := json.Marshal(out.Value)
		if err != nil {
			return err
		}
		out.Value = encoded(b)
	}
	return s.MemoryStore.Complete(ctx, key, owner, out, ttl)
}

func decoded(rec idempotency.Record) idempotency.Record {
	if b, ok := rec.Value.(encoded); ok {
		rec.Value, rec.Data, rec.Decode = nil, b, json.Unmarshal
	}
	return rec
}

func (s jsonStore) Claim(ctx context.Context, key, owner, fp string, lease time.Duration) (idempotency.Record, bool, error) {
	rec, claimed, err := s.MemoryStore.Claim(ctx, key, owner, fp, lease)
	return decoded(rec), claimed, err
}

func (s jsonStore) Get(ctx context.Context, key string) (idempotency.Record, bool, error) {
	rec, found, err := s.MemoryStore.Get(ctx, key)
	return decoded(rec), found, err
}

// A duplicate is replayed the same from a store that encodes values.
func TestReplayFromAStoreThatEncodes(t *testing.T) {
	mem, err := idempotency.NewMemoryStore(idempotency.MemoryConfig{})
	require.NoError(t, err)
	cfg := testConfig()
	cfg.Idempotency = &pipeline.IdempotencyConfig{Store: jsonStore{mem}}
	srv := newServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Location", "/v1/charges/ch_1")
		w.Header().Add("Set-Cookie", "a=1")
		w.Header().Add("Set-Cookie", "b=2")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, "\x00binary\xffbody")
	})
	client, _ := newClient(t, newStack(t, cfg))
	var got []*http.Response
	for range 2 {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/v1/charges", strings.NewReader(`{"amount":100}`))
		req.Header.Set("Idempotency-Key", "charge-1")
		resp, err := client.Do(req)
		require.NoError(t, err)
		got = append(got, resp)
	}
	assert.Equal(t, 1, srv.count())
	first, dup := got[0], got[1]
	assert.Equal(t, "\x00binary\xffbody", readAll(t, first))
	assert.Equal(t, "\x00binary\xffbody", readAll(t, dup))
	assert.Equal(t, http.StatusCreated, dup.StatusCode)
	assert.Equal(t, first.Status, dup.Status)
	assert.Equal(t, "/v1/charges/ch_1", dup.Header.Get("Location"))
	assert.Equal(t, []string{"a=1", "b=2"}, dup.Header.Values("Set-Cookie"))
	assert.Equal(t, "true", dup.Header.Get(bulwarkhttp.HeaderReplayed))
}
