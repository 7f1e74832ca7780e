package bulwarkhttp

import (
	"bytes"
	"io"
	"maps"
	"net/http"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark/pipeline"
	"github.com/bulwark-go/bulwark/retry"
)

type okBase struct{}

func (okBase) RoundTrip(req *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Status: "200 OK", Header: http.Header{},
		Body: io.NopCloser(bytes.NewReader([]byte("ok"))), ContentLength: 2, Request: req}, nil
}

// The Transport binds a chain only for executors that exist: hosts beyond
// the Stack's bound on executors made on demand add none, however many.
func TestChainsAreBoundedByTheStacksExecutors(t *testing.T) {
	stack, err := pipeline.New(pipeline.Config{Retry: &retry.Config{}})
	require.NoError(t, err)
	require.NoError(t, stack.SetMaxOnDemand(2))
	tr := &Transport{Base: okBase{}, Stack: stack}
	for round := range 2 {
		for _, host := range []string{"a.example", "b.example", "c.example", "d.example"} {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+host+"/x", nil)
			require.NoError(t, err)
			resp, err := tr.RoundTrip(req)
			if host == "a.example" || host == "b.example" {
				require.NoError(t, err, "round %d, %s", round, host)
				require.NoError(t, resp.Body.Close())
			} else {
				require.ErrorIs(t, err, pipeline.ErrUnknownExecutor, "round %d, %s", round, host)
			}
		}
	}
	c := tr.chains.Load()
	require.NotNil(t, c)
	assert.Equal(t, []string{"a.example", "b.example"}, slices.Sorted(maps.Keys(c.funcs)))
}
