package main

import (
	"regexp"
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

		row := func(at string) string {
			m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(at) + `  .*$`).FindString(s)
			require.NotEmpty(t, m, "row %s", at)
			return strings.Join(strings.Fields(m), " ")
		}
		// Same outage, different behaviour: payment-api opens after 2
		// failures and answers with errors; slack opens after 3 and
		// answers every read from its cache.
		assert.Equal(t, "0.10s down failed: 503 CLOSED failed → cached CLOSED", row("0.10s"))
		assert.Equal(t, "0.20s down failed: 503 OPEN failed → cached CLOSED", row("0.20s"))
		assert.Equal(t, "0.30s down rejected: circuit open OPEN failed → cached OPEN", row("0.30s"))
		assert.Equal(t, "0.40s down rejected: circuit open OPEN rejected → cached OPEN", row("0.40s"))
		// slack probes after its shorter reset timeout and closes after 3 probes.
		assert.Equal(t, "1.00s up rejected: circuit open OPEN history v2 HALF_OPEN", row("1.00s"))
		assert.Equal(t, "1.20s up rejected: circuit open OPEN history v4 CLOSED", row("1.20s"))
		// payment-api waits longer, and needs 5 probes.
		assert.Equal(t, "1.40s up rejected: circuit open OPEN history v6 CLOSED", row("1.40s"))
		assert.Equal(t, "1.50s up charged #1016 (ch_2) HALF_OPEN history v7 CLOSED", row("1.50s"))
		assert.Equal(t, "1.80s up charged #1019 (ch_5) HALF_OPEN history v10 CLOSED", row("1.80s"))
		assert.Equal(t, "1.90s up charged #1020 (ch_6) CLOSED history v11 CLOSED", row("1.90s"))

		assert.NotRegexp(t, `(?m)^\S+\s+\S+\s+\S+ →`, s, "a charge is never answered from a cache")
		assert.Contains(t, s, "payment-api: 8 charges made, 14 refused with an error")
		assert.Contains(t, s, "slack:       22 of 22 reads answered, 9 of them from the cache.")
		assert.Contains(t, s, "order #1016 submitted again: replayed=true, charge ch_2, requests to the processor still 8.")
		assert.Regexp(t, `payment-api +CLOSED +80\.0% +22 +2 +12 +1 +- +- +1\n`, s)
		assert.Regexp(t, `slack +CLOSED +81\.2% +22 +3 +6 +1 +- +9 +0\n`, s)
	})
}
