package sessions

// QueuedOps is the number of reads and slides waiting for the next Redis
// round, for tests that line calls up behind a round in flight.
func QueuedOps(r *Redis) int {
	r.batch.mu.Lock()
	defer r.batch.mu.Unlock()
	return len(r.batch.queue)
}

// QueuedRevocations is how many Revoke calls wait for the next group (tests
// use it to build a group deterministically).
func (s *Store) QueuedRevocations() int {
	s.revokes.mu.Lock()
	defer s.revokes.mu.Unlock()
	return len(s.revokes.queue)
}
