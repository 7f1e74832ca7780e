//go:build race

package cache

// raceEnabled shortens the soak tests under the race detector.
const raceEnabled = true
