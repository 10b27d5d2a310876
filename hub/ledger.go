package hub

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/sessionhub/sessionhub/internal/groupcommit"
)

// ledgerBatch caps the adds of one round trip: a connect storm's queue is
// cut into scripts that each run well under a millisecond in Redis.
const ledgerBatch = 256

// ledger batches the cluster-wide socket ledger (group commit). Every add
// and remove queued while a round trip is in flight leaves in the next
// one: one EVALSHA for all the adds, the ZREMs pipelined beside it. Under a
// connect storm a socket's share of the Redis cost is a small fraction of a
// round trip, and a close costs no round trip of its own (it is not waited
// for). Until Run runs the adds' group (and after it stops) calls go
// straight to Redis.
type ledger struct {
	b    *redisBroker
	adds *groupcommit.Group[*ledgerAdd] // a nil add asks for a round for removes

	mu      sync.Mutex
	removes []ledgerRemove // every round takes them all, whatever its adds
}

type ledgerAdd struct {
	user, member string
	limit        int
	evict        []string
	err          error
	done         chan struct{}
}

type ledgerRemove struct{ user, member string }

func newLedger(b *redisBroker) *ledger {
	l := &ledger{b: b}
	l.adds = groupcommit.New(groupcommit.Config[*ledgerAdd]{Max: ledgerBatch, Owned: true, Commit: l.round})
	return l
}

// add records member and waits for its round trip; see broker.AddSocket.
func (l *ledger) add(ctx context.Context, user, member string, limit int) ([]string, error) {
	a := &ledgerAdd{user: user, member: member, limit: limit, done: make(chan struct{})}
	if l.adds.Add(ctx, a) {
		return a.evict, a.err
	}
	select {
	case <-a.done:
		return a.evict, a.err
	case <-ctx.Done():
		return nil, fmt.Errorf("hub: socket ledger: %w", ctx.Err())
	}
}

// remove forgets member in a later round trip; it never waits. The remove
// that finds none pending asks for a round, which takes the later ones too.
func (l *ledger) remove(ctx context.Context, user, member string) error {
	l.mu.Lock()
	first := len(l.removes) == 0
	l.removes = append(l.removes, ledgerRemove{user, member})
	l.mu.Unlock()
	if first {
		l.adds.Add(ctx, nil)
	}
	return nil
}

// round is one pipelined round trip: the pending removals, then every add
// of batch in one script run. Each add's done is closed once its result is
// known.
func (l *ledger) round(ctx context.Context, batch []*ledgerAdd) func() {
	l.mu.Lock()
	removes := l.removes
	l.removes = nil
	l.mu.Unlock()
	adds := slices.DeleteFunc(batch, func(a *ledgerAdd) bool { return a == nil })
	if len(adds) > 0 && len(removes) > 0 {
		// A socket whose handshake gave up on its add can close before
		// that add leaves: the two meet here, and since the ZREMs run
		// before the script's ZADDs the add would leave a member behind
		// that counts against its user until the key expires. Neither is
		// sent; nobody waits for such an add.
		gone := make(map[ledgerRemove]bool, len(removes))
		for _, r := range removes {
			gone[r] = true
		}
		adds = slices.DeleteFunc(adds, func(a *ledgerAdd) bool {
			if gone[ledgerRemove{a.user, a.member}] {
				close(a.done)
				return true
			}
			return false
		})
	}
	if len(adds) == 0 && len(removes) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, ledgerTimeout)
	defer cancel()
	b := l.b
	var keys []string
	var args []any
	if len(adds) > 0 {
		node, _, _ := strings.Cut(adds[0].member, "|")
		keys = make([]string, 0, 1+len(adds))
		keys = append(keys, b.hubKey("nodes"))
		args = make([]any, 0, 3+2*len(adds))
		args = append(args, presenceWindow.Milliseconds(), ledgerTTL.Milliseconds(), node)
		for _, a := range adds {
			keys = append(keys, b.hubKey("u:"+a.user))
			args = append(args, a.member, a.limit)
		}
	}
	var script *redis.Cmd
	_, err := b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, r := range removes {
			p.ZRem(ctx, b.hubKey("u:"+r.user), r.member)
		}
		if len(adds) > 0 {
			script = b.addSock.EvalSha(ctx, p, keys, args...)
		}
		return nil
	})
	if script != nil && redis.HasErrorPrefix(script.Err(), "NOSCRIPT") {
		script = b.addSock.Eval(ctx, b.rdb, keys, args...)
		err = script.Err()
	}
	if err != nil && !errors.Is(err, redis.Nil) {
		err = fmt.Errorf("hub: socket ledger: %w", err)
		if len(adds) == 0 {
			b.log.Debug("hub: ledger remove failed", "err", err)
		}
	} else {
		err = nil
	}
	var per []any
	if script != nil && err == nil {
		per, _ = script.Val().([]any)
	}
	for i, a := range adds {
		a.err = err
		if err == nil && i < len(per) {
			evicted, _ := per[i].([]any)
			for _, m := range evicted {
				if s, ok := m.(string); ok {
					a.evict = append(a.evict, s)
				}
			}
		}
		close(a.done)
	}
	return nil
}

// addSocketLua adds, for each socket j, ARGV[2+2j] ("node|socket") to the
// sorted set KEYS[1+j] of its user, scored by Redis time (so node clocks
// need not agree; +j keeps a batch in order), forgets members of nodes
// that stopped beating (a crashed node's sockets) and evicts the oldest
// others past the limit ARGV[3+2j]. ARGV[1] is the presence window (ms),
// ARGV[2] the key TTL (ms), ARGV[3] this node. It returns, per socket, the
// members to close.
const addSocketLua = `
local t = redis.call('TIME')
local nowus = tonumber(t[1]) * 1000000 + tonumber(t[2])
local cutoff = math.floor(nowus / 1000) - tonumber(ARGV[1])
local self = ARGV[3]
local alive = {}
local out = {}
for j = 1, #KEYS - 1 do
  local key = KEYS[1 + j]
  local me = ARGV[2 + 2 * j]
  local limit = tonumber(ARGV[3 + 2 * j])
  redis.call('ZADD', key, nowus + j, me)
  local members = redis.call('ZRANGE', key, 0, -1)
  local live = {}
  for _, m in ipairs(members) do
    local node = string.match(m, '^(.-)|')
    local ok = (m == me) or (node == self)
    if not ok and node then
      if alive[node] == nil then
        local seen = redis.call('ZSCORE', KEYS[1], node)
        alive[node] = (seen and tonumber(seen) >= cutoff) or false
      end
      ok = alive[node]
    end
    if ok then
      live[#live + 1] = m
    else
      redis.call('ZREM', key, m)
    end
  end
  local evicted = {}
  local excess = #live - limit
  for _, m in ipairs(live) do
    if excess <= 0 then break end
    if m ~= me then
      redis.call('ZREM', key, m)
      evicted[#evicted + 1] = m
      excess = excess - 1
    end
  end
  redis.call('PEXPIRE', key, ARGV[2])
  out[#out + 1] = evicted
end
return out`
