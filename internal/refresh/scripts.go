package refresh

import (
	"context"
	_ "embed"

	"github.com/redis/go-redis/v9"
)

// The work set's Redis scripts, one .lua file per operation. Each runs in
// one hash slot: a shard's keys (or the earlier single-slot layout's).
var (
	//go:embed lua/add.lua
	addSrc string
	//go:embed lua/peek.lua
	peekSrc string
	//go:embed lua/claim.lua
	claimSrc string
	//go:embed lua/finish.lua
	finishSrc string
	//go:embed lua/extend.lua
	extendSrc string
	//go:embed lua/pull.lua
	pullSrc string
	//go:embed lua/legacy_take.lua
	legacyTakeSrc string
	//go:embed lua/legacy_forget.lua
	legacyForgetSrc string

	addScript          = redis.NewScript(addSrc)
	peekScript         = redis.NewScript(peekSrc)
	claimScript        = redis.NewScript(claimSrc)
	finishScript       = redis.NewScript(finishSrc)
	extendScript       = redis.NewScript(extendSrc)
	pullScript         = redis.NewScript(pullSrc)
	legacyTakeScript   = redis.NewScript(legacyTakeSrc)
	legacyForgetScript = redis.NewScript(legacyForgetSrc)
)

// scriptCall is one call of a script: its keys and arguments.
type scriptCall struct {
	keys []string
	args []any
}

// evalEach runs s once per call, all in one pipeline — one round trip on a
// single server; on a Cluster, go-redis splits it by node, so a node that is
// down fails only its own calls. A call answered NOSCRIPT (the server lost
// its script cache: restarted, failed over) is run again on its own, which
// loads the script. Each call's outcome is in its Cmd.
func evalEach(ctx context.Context, rdb redis.UniversalClient, s *redis.Script, calls []scriptCall) []*redis.Cmd {
	if len(calls) == 1 {
		return []*redis.Cmd{s.Run(ctx, rdb, calls[0].keys, calls[0].args...)}
	}
	pipe := rdb.Pipeline()
	cmds := make([]*redis.Cmd, len(calls))
	for i, c := range calls {
		cmds[i] = pipe.EvalSha(ctx, s.Hash(), c.keys, c.args...)
	}
	_, _ = pipe.Exec(ctx) // each command carries its own error
	for i, c := range calls {
		if redis.HasErrorPrefix(cmds[i].Err(), "NOSCRIPT") {
			cmds[i] = s.Run(ctx, rdb, c.keys, c.args...)
		}
	}
	return cmds
}
