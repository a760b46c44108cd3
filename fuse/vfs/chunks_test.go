package vfs

import "testing"

// TestChunks: elements come back by index across the growing and the full
// chunks, and whole.
func TestChunks(t *testing.T) {
	var l chunks[int]
	const n = 100_000 // more chunks than bits in a word
	for i := range n {
		l.add(i)
	}
	if l.len() != n {
		t.Fatalf("len %d", l.len())
	}
	for i := range n {
		if v := l.at(i); v != i {
			t.Fatalf("at(%d) = %d", i, v)
		}
	}
	all := l.all()
	if len(all) != n || cap(all) != n || all[n-1] != n-1 || all[2031] != 2031 {
		t.Fatalf("all: len %d cap %d", len(all), cap(all))
	}
}
