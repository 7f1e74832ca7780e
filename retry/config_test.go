package retry_test

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bulwark-go/bulwark/retry"
)

func TestNewAcceptsValidConfigs(t *testing.T) {
	for name, cfg := range map[string]retry.Config{
		"zero":                {},
		"one attempt":         {MaxAttempts: 1},
		"multiplier 1":        {Multiplier: 1},
		"factor 1":            {RandomizationFactor: 1},
		"no jitter":           {NoJitter: true},
		"no wait":             {NoWait: true, MaxAttempts: 5, MaxElapsedTime: time.Second},
		"interval = max":      {InitialInterval: time.Second, MaxInterval: time.Second},
		"interval up to 60s":  {InitialInterval: time.Minute},
		"everything explicit": {MaxAttempts: 7, InitialInterval: time.Millisecond, Multiplier: 3, RandomizationFactor: 0.2, MaxInterval: time.Second, MaxElapsedTime: time.Minute, MaxRetryAfter: time.Hour},
	} {
		r, err := retry.New(cfg)
		assert.NoError(t, err, name)
		assert.NotNil(t, r, name)
	}
}

func TestNewRejectsInvalidConfigs(t *testing.T) {
	for _, tc := range []struct {
		cfg   retry.Config
		field string
	}{
		{retry.Config{MaxAttempts: -1}, "MaxAttempts"},
		{retry.Config{InitialInterval: -time.Second}, "InitialInterval"},
		{retry.Config{Multiplier: 0.5}, "Multiplier"},
		{retry.Config{Multiplier: -2}, "Multiplier"},
		{retry.Config{Multiplier: math.NaN()}, "Multiplier"},
		{retry.Config{Multiplier: math.Inf(1)}, "Multiplier"},
		{retry.Config{RandomizationFactor: -0.1}, "RandomizationFactor"},
		{retry.Config{RandomizationFactor: 1.5}, "RandomizationFactor"},
		{retry.Config{RandomizationFactor: math.NaN()}, "RandomizationFactor"},
		{retry.Config{NoJitter: true, RandomizationFactor: 0.3}, "NoJitter"},
		{retry.Config{MaxInterval: -1}, "MaxInterval"},
		{retry.Config{InitialInterval: 2 * time.Second, MaxInterval: time.Second}, "MaxInterval"},
		{retry.Config{InitialInterval: 2 * time.Minute}, "MaxInterval"}, // above the 60s default
		{retry.Config{MaxElapsedTime: -1}, "MaxElapsedTime"},
		{retry.Config{MaxRetryAfter: -time.Minute}, "MaxRetryAfter"},
		{retry.Config{NoWait: true, InitialInterval: time.Second}, "InitialInterval"},
		{retry.Config{NoWait: true, Multiplier: 2}, "Multiplier"},
		{retry.Config{NoWait: true, MaxInterval: time.Second}, "MaxInterval"},
		{retry.Config{NoWait: true, RandomizationFactor: 0.1}, "RandomizationFactor"},
		{retry.Config{NoWait: true, NoJitter: true}, "NoJitter"},
	} {
		r, err := retry.New(tc.cfg)
		require.Error(t, err, "%+v", tc.cfg)
		assert.Nil(t, r)
		assert.ErrorIs(t, err, retry.ErrInvalidConfig)
		assert.True(t, strings.HasPrefix(err.Error(), "retry: invalid config: "+tc.field+" "),
			"error %q should name %s", err, tc.field)
	}
}

func TestNewReportsEveryInvalidField(t *testing.T) {
	_, err := retry.New(retry.Config{MaxAttempts: -1, Multiplier: 0.5, MaxRetryAfter: -1})
	require.Error(t, err)
	msg := err.Error()
	for _, field := range []string{"MaxAttempts", "Multiplier", "MaxRetryAfter"} {
		assert.Contains(t, msg, field)
	}
	var joined interface{ Unwrap() []error }
	require.True(t, errors.As(err, &joined))
	assert.Len(t, joined.Unwrap(), 3)
}

func TestValidationMessageSaysWhatZeroMeans(t *testing.T) {
	_, err := retry.New(retry.Config{MaxAttempts: -2})
	assert.EqualError(t, err, "retry: invalid config: MaxAttempts is -2, must not be negative (0 means 3)")
	_, err = retry.New(retry.Config{InitialInterval: 2 * time.Minute})
	assert.EqualError(t, err, "retry: invalid config: MaxInterval is 0, meaning 1m0s, below InitialInterval 2m0s; set MaxInterval")
}
