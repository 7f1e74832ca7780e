package main

import (
	"strings"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out strings.Builder
		require.NoError(t, run(&out))
		s := out.String()
		t.Log("\n" + s)

		for _, block := range []string{
			"github\n  breaker:  none\n  fallback: none\n  events:   none\n",
			"notion\n  breaker:  CLOSED; calls 30: successes 30, failures 0, rejections 0; times opened 0; mean latency 30ms\n",
			"payments\n  breaker:  OPEN (forced); calls 10: successes 6, failures 0, rejections 4; times opened 1; mean latency 40ms\n",
			"slack\n  breaker:  CLOSED; calls 20: successes 20, failures 0, rejections 0; times opened 0;",
			"  fallback: no failed call needed it\n  events:   request:success=20 retry:attempt=6\n",
			"trello\n  breaker:  OPEN; calls 10: successes 4, failures 3, rejections 3; times opened 1;",
			"  fallback: 6 failed calls served from cache, 0 found nothing (hit ratio 100%)\n",
			"  events:   circuit:opened=1 fallback:used=6 request:failure=3 request:rejected=3 request:success=4 retry:attempt=6 retry:exhausted=3\n",
		} {
			assert.Contains(t, s, block)
		}

		_, summary, ok := strings.Cut(s, "Summary():\n")
		require.True(t, ok)
		want := "" +
			"EXECUTOR  STATE   SUCCESS RATE  CALLS  FAILURES  REJECTIONS  OPENED  NEXT ATTEMPT  FROM CACHE  REPLAYED  IN FLIGHT  WAITING  FULL  LIMITED  PAUSED\n" +
			"github    -       -             -      -         -           -       -             -           -         -          -        -     -        -\n" +
			"notion    CLOSED  100.0%        30     0         0           0       -             -           0         -          -        -     -        -\n" +
			"payments  OPEN    100.0%        10     0         4           1       forced open   -           0         -          -        -     -        -\n" +
			"slack     CLOSED  100.0%        20     0         0           0       -             0           0         0/4        0        0     0        no\n" +
			"trello    OPEN    57.1%         10     3         3           1       in 1m0s       6           0         -          -        -     -        -\n"
		assert.Equal(t, want, summary)
	})
}
