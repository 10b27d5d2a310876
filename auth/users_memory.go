package auth

import (
	"context"
	"slices"
	"strings"
	"sync"
)

// memUsers is the in-memory UserStore of the embedded single-node mode.
type memUsers struct {
	mu      sync.Mutex
	byID    map[string]*User
	byEmail map[string]string // lower(email) → id
	ids     map[[2]string]*Identity
}

// NewMemoryUsers returns an empty in-memory UserStore.
func NewMemoryUsers() UserStore {
	return &memUsers{byID: map[string]*User{}, byEmail: map[string]string{}, ids: map[[2]string]*Identity{}}
}

func cloneUser(u *User) *User {
	c := *u
	c.Scopes = slices.Clone(u.Scopes)
	if c.Scopes == nil {
		c.Scopes = []string{}
	}
	return &c
}

func (m *memUsers) CreateUser(_ context.Context, u *User) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := strings.ToLower(u.Email)
	if _, ok := m.byEmail[k]; ok {
		return ErrEmailTaken
	}
	c := cloneUser(u)
	c.UpdatedAt = c.CreatedAt
	m.byID[u.ID] = c
	m.byEmail[k] = u.ID
	return nil
}

func (m *memUsers) UserByEmail(_ context.Context, email string) (*User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	id, ok := m.byEmail[strings.ToLower(email)]
	if !ok {
		return nil, ErrUserNotFound
	}
	return cloneUser(m.byID[id]), nil
}

func (m *memUsers) UserByID(_ context.Context, id string) (*User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.byID[strings.ToLower(id)]
	if !ok {
		return nil, ErrUserNotFound
	}
	return cloneUser(u), nil
}

func (m *memUsers) SetPasswordHash(_ context.Context, id, hash string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.byID[id]
	if !ok {
		return ErrUserNotFound
	}
	u.PasswordHash = hash
	return nil
}

func (m *memUsers) AddScopes(_ context.Context, id string, scopes []string) (*User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.byID[strings.ToLower(id)]
	if !ok {
		return nil, ErrUserNotFound
	}
	all := append(slices.Clone(u.Scopes), scopes...)
	slices.Sort(all)
	u.Scopes = slices.Compact(all)
	return cloneUser(u), nil
}

func (m *memUsers) SearchUsers(_ context.Context, q, after string, limit int) ([]*User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	q = strings.ToLower(q)
	after = strings.ToLower(after)
	var hits []*User
	for _, u := range m.byID {
		le := strings.ToLower(u.Email)
		if le <= after {
			continue
		}
		if q == "" || strings.Contains(le, q) || strings.Contains(strings.ToLower(u.Name), q) {
			hits = append(hits, u)
		}
	}
	slices.SortFunc(hits, func(a, b *User) int {
		return strings.Compare(strings.ToLower(a.Email), strings.ToLower(b.Email))
	})
	out := []*User{}
	for i := 0; i < len(hits) && i < limit; i++ {
		out = append(out, cloneUser(hits[i]))
	}
	return out, nil
}

func (m *memUsers) IdentityBySubject(_ context.Context, provider, subject string) (*Identity, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	id, ok := m.ids[[2]string{provider, subject}]
	if !ok {
		return nil, ErrIdentityNotFound
	}
	c := *id
	return &c, nil
}

func (m *memUsers) LinkIdentity(_ context.Context, id *Identity) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.byID[id.UserID]; !ok {
		return ErrUserNotFound
	}
	k := [2]string{id.Provider, id.Subject}
	if old, ok := m.ids[k]; ok && old.UserID != id.UserID {
		return ErrIdentityTaken
	}
	c := *id
	m.ids[k] = &c
	return nil
}

func (m *memUsers) CreateUserWithIdentity(_ context.Context, u *User, id *Identity) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := strings.ToLower(u.Email)
	if _, ok := m.byEmail[k]; ok {
		return ErrEmailTaken
	}
	ik := [2]string{id.Provider, id.Subject}
	if _, ok := m.ids[ik]; ok {
		return ErrIdentityTaken
	}
	c := cloneUser(u)
	c.UpdatedAt = c.CreatedAt
	m.byID[u.ID] = c
	m.byEmail[k] = u.ID
	ci := *id
	m.ids[ik] = &ci
	return nil
}
