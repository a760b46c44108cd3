package vfs

import (
	"slices"
	"strings"
)

// Listing is the parsed answer to one PROPFIND: the resource itself and, for
// Depth 1, its children by name. The children are kept packed in one slice
// sorted by name (64 bytes each besides the name, where a map of Info and
// a slice of names took about 150): the mount keeps a listing of every
// folder it shows.
type Listing struct {
	Self     Info
	HasSelf  bool
	FileID   bool // the server sent oc:fileid: ownCloud-lineage, folder ETags change with their content
	Streamed bool // the children were handed out as they arrived
	Accepted int  // children found in the document (before dropping unusable names)

	ents []entry // sorted by name, names unique
}

// entry is a child of a listing.
type entry struct {
	name string
	in   Packed
}

// children gathers the children of a listing, in any order, each name once.
type children struct {
	ents chunks[entry]
	seen map[string]struct{}
}

// add adds a child unless one of that name came already.
func (c *children) add(name string, in Info) bool {
	if c.seen == nil {
		c.seen = map[string]struct{}{}
	}
	if _, dup := c.seen[name]; dup {
		return false
	}
	c.seen[name] = struct{}{}
	c.ents.add(entry{name: name, in: Pack(in)})
	return true
}

// sorted returns the children sorted by name, in a slice of their number.
func (c *children) sorted() []entry {
	return sortEntries(c.ents.all())
}

func sortEntries(ents []entry) []entry {
	slices.SortFunc(ents, func(a, b entry) int { return strings.Compare(a.name, b.name) })
	return ents
}

// SetChildren replaces the children of l with those of m.
func (l *Listing) SetChildren(m map[string]Info) {
	ents := make([]entry, 0, len(m))
	for name, in := range m {
		ents = append(ents, entry{name: name, in: Pack(in)})
	}
	l.ents = sortEntries(ents)
}

// Children returns the children of l by name, in a new map.
func (l *Listing) Children() map[string]Info {
	m := make(map[string]Info, len(l.ents))
	for _, e := range l.ents {
		m[e.name] = e.in.Info()
	}
	return m
}

// Len is the number of children of l.
func (l *Listing) Len() int { return len(l.ents) }

// At returns child i of l in name order.
func (l *Listing) At(i int) Dirent {
	return Dirent{Name: l.ents[i].name, Info: l.ents[i].in.Info()}
}

// Names returns the names of the children of l in order, in a new slice.
func (l *Listing) Names() []string {
	names := make([]string, len(l.ents))
	for i, e := range l.ents {
		names[i] = e.name
	}
	return names
}

func (l *Listing) find(name string) (int, bool) {
	return slices.BinarySearchFunc(l.ents, name, func(e entry, name string) int { return strings.Compare(e.name, name) })
}

// Lookup returns child name of l.
func (l *Listing) Lookup(name string) (Info, bool) {
	if i, ok := l.find(name); ok {
		return l.ents[i].in.Info(), true
	}
	return Info{}, false
}

// IsDir reports whether l has a child name that is a directory.
func (l *Listing) IsDir(name string) bool {
	i, ok := l.find(name)
	return ok && l.ents[i].in.IsDir()
}

// Set adds child name to l, or replaces it.
func (l *Listing) Set(name string, in Info) {
	i, ok := l.find(name)
	if ok {
		l.ents[i].in = Pack(in)
		return
	}
	l.ents = slices.Insert(l.ents, i, entry{name: name, in: Pack(in)})
}

// Remove removes child name from l; it reports whether l had it.
func (l *Listing) Remove(name string) bool {
	i, ok := l.find(name)
	if ok {
		l.ents = slices.Delete(l.ents, i, i+1)
	}
	return ok
}
