package breaker

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConfigDefaults(t *testing.T) {
	s := mustSettings(t, Config{})
	assert.Equal(t, 5, s.failureThreshold)
	assert.Equal(t, time.Minute, s.failureWindow)
	assert.Equal(t, 30*time.Second, s.resetTimeout)
	assert.Equal(t, 2, s.successThreshold)
	assert.Equal(t, 2, s.halfOpenMax)
	assert.Equal(t, 10*time.Second, s.requestTimeout)
	assert.Zero(t, s.ratio)
	assert.True(t, s.timed(), "the default request timeout reads the clock")

	s = mustSettings(t, Config{SuccessThreshold: 4})
	assert.Equal(t, 4, s.halfOpenMax, "HalfOpenMaxCalls defaults to SuccessThreshold")

	s = mustSettings(t, Config{RequestTimeout: -1})
	assert.Negative(t, s.requestTimeout)
	assert.False(t, s.timed())

	s = mustSettings(t, Config{FailureRatio: 0.5, MinimumThroughput: 1})
	assert.Equal(t, time.Minute, s.samplingWindow)
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		cfg   Config
		field string
	}{
		{Config{FailureThreshold: -1}, "FailureThreshold"},
		{Config{FailureWindow: -time.Second}, "FailureWindow"},
		{Config{ResetTimeout: -time.Second}, "ResetTimeout"},
		{Config{SuccessThreshold: -2}, "SuccessThreshold"},
		{Config{HalfOpenMaxCalls: -1}, "HalfOpenMaxCalls"},
		{Config{MinimumThroughput: -1}, "MinimumThroughput"},
		{Config{SamplingWindow: -time.Second}, "SamplingWindow"},
		{Config{FailureRatio: -0.1}, "FailureRatio"},
		{Config{FailureRatio: 1.5}, "FailureRatio"},
		{Config{FailureRatio: math.NaN()}, "FailureRatio"},
		{Config{FailureRatio: 0.5}, "MinimumThroughput"},
		{Config{FailureRatio: 0.5, MinimumThroughput: 1, SamplingWindow: 50 * time.Millisecond}, "SamplingWindow"},
		{Config{FailureRatio: 0.5, MinimumThroughput: 1, FailureThreshold: 3}, "FailureThreshold"},
		{Config{FailureRatio: 0.5, MinimumThroughput: 1, FailureWindow: time.Second}, "FailureWindow"},
		{Config{MinimumThroughput: 10}, "MinimumThroughput"},
		{Config{SamplingWindow: time.Minute}, "SamplingWindow"},
	}
	for _, tt := range tests {
		b, err := New("svc", tt.cfg)
		require.Error(t, err, "%+v", tt.cfg)
		assert.Nil(t, b)
		var ce *ConfigError
		require.True(t, errors.As(err, &ce), "%T", err)
		assert.Equal(t, tt.field, ce.Field, "%+v", tt.cfg)
		assert.Equal(t, "svc", ce.Name)
		assert.Contains(t, err.Error(), `breaker "svc": invalid Config.`+tt.field+": ")
	}
}

func TestConfigValidEdges(t *testing.T) {
	for _, cfg := range []Config{
		{FailureRatio: 1, MinimumThroughput: 1},
		{FailureRatio: 0.01, MinimumThroughput: 100, SamplingWindow: 100 * time.Millisecond},
		{RequestTimeout: -1, AbandonOnTimeout: true},
		{HalfOpenMaxCalls: 1, SuccessThreshold: 3},
	} {
		_, err := New("svc", cfg)
		assert.NoError(t, err, "%+v", cfg)
	}
}

func TestConfigErrorWithoutName(t *testing.T) {
	_, err := NewGroup(Config{ResetTimeout: -1})
	require.EqualError(t, err, "breaker: invalid Config.ResetTimeout: -1ns is negative")
}
