// Package compare benchmarks bulwark's cache against two well-kept Go
// caches, hashicorp/golang-lru/v2/expirable and maypok86/otter/v2, doing
// the same work in each: a bounded cache of string keys with a time to live
// on every entry.
//
// It is a separate module so that the core module does not depend on the
// libraries it is compared with. Run it with
//
//	cd cache/internal/compare && go test -run '^$' -bench . -benchmem -count 6
//
// The results are recorded in docs/cache.md.
package compare
