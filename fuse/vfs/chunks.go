package vfs

import "math/bits"

// Sizes of the chunks of a chunks list: doubling from chunkFirst up to
// chunkMax, then chunkMax each.
const (
	chunkFirst = 16
	chunkMax   = 1024
	// chunkSmall is how many elements the growing chunks hold.
	chunkSmall = 2*chunkMax - chunkFirst
	// chunkGrowing is how many chunks grow.
	chunkGrowing = 7 // 16 << 6 == chunkMax
)

// chunks is a list that grows without copying what it holds, for the
// children of a listing as they arrive: an appended slice would copy its
// elements at each growth, leaving garbage of several times its size
// (which, a large listing being parsed at once, stays in the resident
// memory until the next collection).
type chunks[T any] struct {
	c [][]T
	n int
}

func (l *chunks[T]) add(v T) {
	if k := len(l.c); k == 0 || len(l.c[k-1]) == cap(l.c[k-1]) {
		size := chunkMax
		if k < chunkGrowing {
			size = chunkFirst << k
		}
		l.c = append(l.c, make([]T, 0, size))
	}
	last := &l.c[len(l.c)-1]
	*last = append(*last, v)
	l.n++
}

func (l *chunks[T]) len() int { return l.n }

// at returns element i, which must be below len.
func (l *chunks[T]) at(i int) T {
	if i < chunkSmall {
		k := bits.Len(uint(i/chunkFirst+1)) - 1
		return l.c[k][i-chunkFirst*(1<<k-1)]
	}
	i -= chunkSmall
	return l.c[chunkGrowing+i/chunkMax][i%chunkMax]
}

// all returns the elements in one slice of their number.
func (l *chunks[T]) all() []T {
	out := make([]T, 0, l.n)
	for _, c := range l.c {
		out = append(out, c...)
	}
	return out
}
