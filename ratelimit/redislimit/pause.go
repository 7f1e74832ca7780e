package redislimit

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// rateKeyPrefix is the prefix redis_rate (v10) puts before a limit's key;
// the pause script writes the same record.
const rateKeyPrefix = "rate:"

// pauseScript moves a redis_rate GCRA record's theoretical arrival time
// (TAT) so that no call is allowed until ARGV[1] seconds from now, on
// Redis's clock: redis_rate allows a call at t when t ≥ TAT − (burst−1) ×
// interval, so the script sets TAT = now + pause + ARGV[2], where ARGV[2]
// is (burst−1) × interval in seconds. It only ever moves TAT later. The
// time base (seconds since 2017-01-01) and the encoding are redis_rate's.
// It returns 1 if it moved TAT, 0 if the record already held longer.
var pauseScript = redis.NewScript(`
local key = KEYS[1]
local pause = tonumber(ARGV[1])
local slack = tonumber(ARGV[2])
local jan_1_2017 = 1483228800
local now = redis.call("TIME")
now = (now[1] - jan_1_2017) + (now[2] / 1000000)
local tat = tonumber(redis.call("GET", key) or now) or now
local want = now + pause + slack
if want <= tat then
  return 0
end
redis.call("SET", key, want, "EX", math.ceil(want - now))
return 1
`)

// maxPause bounds a pause kept in Redis: its expiry in milliseconds must
// fit Redis's 64-bit integers, with room for the server's clock. 100
// years is "as long as possible" for a rate limit.
const maxPause = 100 * 365 * 24 * time.Hour

// PauseFor implements [ratelimit.Pauser]: it holds the calls of every
// process sharing the limit until d from now, on Redis's clock, by moving
// the limit's GCRA record forward (a pause only ever grows). Their
// limiters then learn that the next token is d away: a call that may wait
// so long waits, the others are refused at once. After the pause, calls
// resume at the rate, without a burst. d ≤ 0 does nothing; d
// is capped at 100 years. The round trip is bounded by Config.Timeout; a
// failure is reported to Config.OnError (and counted in Stats.Failures)
// but starts no cooldown. A nil l does nothing. Safe for concurrent use.
//
// [ratelimit.Limiter.PauseFor] calls it; call it directly only to pause
// the processes without pausing a Limiter of this one.
func (l *Limiter) PauseFor(d time.Duration) {
	if l == nil || d <= 0 {
		return
	}
	d = min(d, maxPause)
	ctx, cancel := context.Background(), context.CancelFunc(func() {})
	if l.timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, l.timeout)
	}
	defer cancel()
	interval := l.limit.Period.Seconds() / float64(l.limit.Rate)
	slack := float64(l.limit.Burst-1) * interval
	err := pauseScript.Run(ctx, l.client, []string{rateKeyPrefix + l.key}, d.Seconds(), slack).Err()
	if err != nil {
		l.failures.Add(1)
		l.mu.Lock()
		l.lastErr = err
		l.mu.Unlock()
		if l.onError != nil {
			l.onError(fmt.Errorf("redislimit %q: pausing the shared limit for %v: %w", l.key, d, err))
		}
	}
}
