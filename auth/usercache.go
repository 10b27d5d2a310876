package auth

import (
	"sync"
)

// userCache remembers the public view of users this node has served, so
// that GET /session keeps answering while Postgres is down (API.md:
// "sessions keep validating from Redis"). It is read only when the user
// store is unavailable, so staleness never shows while Postgres is up.
type userCache struct {
	mu sync.Mutex
	m  map[string]userView
}

// maxCachedUsers bounds the cache (~200 B an entry); past it the cache
// starts over, which only matters during a Postgres outage.
const maxCachedUsers = 50_000

func newUserCache() *userCache { return &userCache{m: map[string]userView{}} }

func (c *userCache) put(u *User) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxCachedUsers {
		clear(c.m)
	}
	c.m[u.ID] = viewUser(u)
}

func (c *userCache) get(id string) (userView, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[id]
	return v, ok
}
