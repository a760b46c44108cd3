package testenv

import (
	"bytes"
	"sync"
)

// Buffer collects output that a test reads while others still write it:
// a child process's stdout, or a logger used by many goroutines.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *Buffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// Bytes is a copy of what was written so far.
func (l *Buffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Clone(l.b.Bytes())
}

func (l *Buffer) String() string { return string(l.Bytes()) }
