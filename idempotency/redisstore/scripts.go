package redisstore

import (
	_ "embed"

	"github.com/redis/go-redis/v9"
)

// The Store's operations are Lua scripts, each run atomically by Redis on
// the one key it touches (so they work on Redis Cluster too), except
// renew_many.lua, which ExtendMany runs only over a client of one server. Each script
// is record.lua's helpers followed by its own body; go-redis sends a
// script's SHA-1 (EVALSHA) and falls back to its text (EVAL) when the
// server does not know it yet, after a restart for one.

var (
	//go:embed lua/record.lua
	recordLua string
	//go:embed lua/claim.lua
	claimLua string
	//go:embed lua/get.lua
	getLua string
	//go:embed lua/extend.lua
	extendLua string
	//go:embed lua/complete.lua
	completeLua string
	//go:embed lua/release.lua
	releaseLua string
	//go:embed lua/forget.lua
	forgetLua string
	//go:embed lua/renew.lua
	renewLua string
	//go:embed lua/renew_many.lua
	renewManyLua string
)

// The scripts are built once and never change.
var (
	claimScript     = redis.NewScript(recordLua + claimLua)
	getScript       = redis.NewScript(recordLua + getLua)
	extendScript    = redis.NewScript(recordLua + extendLua)
	completeScript  = redis.NewScript(recordLua + completeLua)
	releaseScript   = redis.NewScript(recordLua + releaseLua)
	forgetScript    = redis.NewScript(forgetLua)
	renewScript     = redis.NewScript(renewLua)     // extendScript, lean, for ExtendMany
	renewManyScript = redis.NewScript(renewManyLua) // renewScript of many keys at once
)

// Answers of the extend, complete and release scripts (see held in
// record.lua).
const (
	heldByOwner = 1
	heldNone    = 0
	heldOther   = -1
	heldDone    = -2
)

// Record states as stored in Redis.
const (
	stateInProgress = "in_progress"
	stateCompleted  = "completed"
)
