package sessions

// QueuedOps is the number of reads and slides waiting for the next Redis
// round, for tests that line calls up behind a round in flight.
func QueuedOps(r *Redis) int {
	r.batch.mu.Lock()
	defer r.batch.mu.Unlock()
	return len(r.batch.queue)
}
