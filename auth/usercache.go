package auth

import (
	"sync"
	"time"
)

// userCache remembers the public view of users this node has served.
// GET /session answers from it without touching Postgres, which keeps the
// hottest authenticated route on Redis alone (session read + slide: two
// round trips). That is safe because the view never changes: id, email,
// name and created_at are written once (no route or command updates them;
// scopes and the password hash are not part of the view). An entry is
// trusted for userCacheTTL, which bounds how long a user deleted by hand
// in the database still shows; past it, the entry still answers while
// Postgres is down (API.md: "sessions keep validating from Redis").
type userCache struct {
	mu  sync.Mutex
	m   map[string]cachedUser
	now func() time.Time
}

type cachedUser struct {
	view userView
	at   time.Time
}

// maxCachedUsers bounds the cache (~250 B an entry, so ~25 MiB at most);
// past it one arbitrary entry makes room for each new one.
const maxCachedUsers = 100_000

// userCacheTTL: long enough that a page-loading user hits the cache, short
// enough that an out-of-band account deletion is seen within a minute.
const userCacheTTL = time.Minute

func newUserCache(now func() time.Time) *userCache {
	if now == nil {
		now = time.Now
	}
	return &userCache{m: map[string]cachedUser{}, now: now}
}

func (c *userCache) put(u *User) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[u.ID]; !ok && len(c.m) >= maxCachedUsers {
		for k := range c.m { // map order is random: a random eviction
			delete(c.m, k)
			break
		}
	}
	c.m[u.ID] = cachedUser{view: viewUser(u), at: c.now()}
}

// get returns the cached view and whether it is younger than userCacheTTL.
func (c *userCache) get(id string) (v userView, fresh, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[id]
	if !ok {
		return userView{}, false, false
	}
	return e.view, c.now().Sub(e.at) < userCacheTTL, true
}
