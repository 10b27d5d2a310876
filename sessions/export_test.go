package sessions

// QueuedOps is the number of reads and slides waiting for the next Redis
// round, for tests that line calls up behind a round in flight.
func QueuedOps(r *Redis) int {
	return r.batch.group.Len()
}

// QueuedRevocations is how many Revoke calls wait for the next group (tests
// use it to build a group deterministically).
func (s *Store) QueuedRevocations() int {
	return s.revokes.Len()
}
