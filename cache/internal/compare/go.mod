module github.com/bulwark-go/bulwark/cache/internal/compare

go 1.25.0

replace github.com/bulwark-go/bulwark => ../../..

require (
	github.com/bulwark-go/bulwark v0.0.0-00010101000000-000000000000
	github.com/hashicorp/golang-lru/v2 v2.0.7
	github.com/maypok86/otter/v2 v2.4.0
)
