package main

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// lockedBuffer is a sink that records each Write call.
type lockedBuffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writes++
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestLogWriterKeepsEveryLineInOrder: lines written from many goroutines
// all reach the sink by Close, whole and in each writer's order; writes
// after Close go straight through.
func TestLogWriterKeepsEveryLineInOrder(t *testing.T) {
	t.Parallel()
	sink := &lockedBuffer{}
	lw := newLogWriter(sink)
	const writers, lines = 8, 500
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range lines {
				_, err := fmt.Fprintf(lw, "w%d line %d\n", w, i)
				require.NoError(t, err)
			}
		})
	}
	wg.Wait()
	lw.Close()
	lw.Close() // idempotent
	_, err := lw.Write([]byte("after close\n"))
	require.NoError(t, err)

	got := strings.Split(strings.TrimSuffix(sink.String(), "\n"), "\n")
	require.Len(t, got, writers*lines+1)
	require.Equal(t, "after close", got[len(got)-1])
	next := make([]int, writers)
	for _, line := range got[:len(got)-1] {
		var w, i int
		_, err := fmt.Sscanf(line, "w%d line %d", &w, &i)
		require.NoError(t, err, line)
		require.Equal(t, next[w], i, "writer %d out of order", w)
		next[w]++
	}
}
