package auth

import (
	"bytes"
	"context"
	"fmt"
	"sync"
)

// refreshMemory keeps refresh tokens in process memory: the embedded
// default, lost on restart like every other in-memory store. One mutex
// serialises rotations, which is what SELECT … FOR UPDATE does in
// Postgres. Records are never pruned: a dev-mode process issues few.
type refreshMemory struct {
	mu       sync.Mutex
	byID     map[string]*refreshRecord
	families map[string]bool // session ids that have a family
}

// NewRefreshMemory returns the in-memory RefreshStore. Unlike Postgres it
// cannot tell whether the session exists; the caller issues only for
// sessions it has just created.
func NewRefreshMemory() RefreshStore {
	return &refreshMemory{
		byID:     make(map[string]*refreshRecord),
		families: make(map[string]bool),
	}
}

// clone copies r so that no caller shares the stored slices.
func (r *refreshRecord) clone() *refreshRecord {
	c := *r
	c.hash = bytes.Clone(r.hash)
	c.successorSealed = bytes.Clone(r.successorSealed)
	return &c
}

func (m *refreshMemory) issue(_ context.Context, r refreshRecord) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.families[r.sessionID] {
		return ErrRefreshFamilyExists
	}
	if _, dup := m.byID[r.id]; dup {
		return fmt.Errorf("auth: refresh token id %s already exists", r.id)
	}
	m.families[r.sessionID] = true
	m.byID[r.id] = r.clone()
	return nil
}

func (m *refreshMemory) rotate(_ context.Context, id string, decide func(cur, succ *refreshRecord) (*rotation, error)) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	stored, ok := m.byID[id]
	if !ok {
		return ErrRefreshInvalid
	}
	var succ *refreshRecord
	if s, ok := m.byID[stored.successorID]; ok && stored.successorID != "" {
		succ = s.clone()
	}
	rot, err := decide(stored.clone(), succ)
	if err != nil || rot == nil {
		return err
	}
	if !stored.rotatedAt.IsZero() {
		// decide only rotates a current token; refuse rather than fork.
		return fmt.Errorf("auth: refresh token %s already rotated", id)
	}
	if _, dup := m.byID[rot.next.id]; dup {
		return fmt.Errorf("auth: refresh token id %s already exists", rot.next.id)
	}
	next := rot.next
	m.byID[next.id] = next.clone()
	stored.rotatedAt = next.createdAt
	stored.successorID = next.id
	stored.successorSealed = bytes.Clone(rot.sealed)
	return nil
}
