package ocmfs

import (
	"context"
	"github.com/ocm-agent/ocm-agent/fuse/vfs"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// rootNode lists the shares. It is read-only for programs: entries come and
// go through SetEntries only.
type rootNode struct {
	fs.Inode
	f *FS
}

var (
	_ fs.NodeLookuper  = (*rootNode)(nil)
	_ fs.NodeReaddirer = (*rootNode)(nil)
	_ fs.NodeGetattrer = (*rootNode)(nil)
	_ fs.NodeStatfser  = (*rootNode)(nil)
	_ fs.NodeMkdirer   = (*rootNode)(nil)
	_ fs.NodeCreater   = (*rootNode)(nil)
	_ fs.NodeUnlinker  = (*rootNode)(nil)
	_ fs.NodeRmdirer   = (*rootNode)(nil)
	_ fs.NodeRenamer   = (*rootNode)(nil)
	_ fs.NodeSymlinker = (*rootNode)(nil)
)

func (r *rootNode) Getattr(ctx context.Context, _ fs.FileHandle, out *fuse.AttrOut) (errno syscall.Errno) {
	defer r.f.trace("root.Getattr")(&errno)
	out.Mode = syscall.S_IFDIR | 0o555
	out.Nlink = 2
	out.Size = 4096
	out.Owner = fuse.Owner{Uid: r.f.uid, Gid: r.f.gid}
	r.f.attrTimes(&out.Attr, r.f.start)
	out.SetTimeout(r.f.o.MetadataTTL)
	return 0
}

// Statfs answers with a large free space: the servers' quotas are not known,
// and file managers refuse to copy onto a filesystem that reports none.
func (r *rootNode) Statfs(ctx context.Context, out *fuse.StatfsOut) (errno syscall.Errno) {
	defer r.f.trace("root.Statfs")(&errno)
	const total = 1 << 40 // in 4 KiB blocks: 4 PiB
	out.Bsize = 4096
	out.Frsize = 4096
	out.Blocks = total
	out.Bfree = total
	out.Bavail = total
	out.Files = 1 << 30
	out.Ffree = 1 << 30
	out.NameLen = vfs.MaxNameBytes
	return 0
}

func (r *rootNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (_ *fs.Inode, errno syscall.Errno) {
	defer r.f.trace("root.Lookup", "name", name)(&errno)
	sh := r.f.shareByName(name)
	if sh == nil {
		return nil, syscall.ENOENT
	}
	sh.awaitResolved()
	dir, _, in := sh.state()
	in.Dir = dir
	// Until the server has answered, the type is the sender's word and the
	// metadata made up: the kernel must not keep them.
	known, lastErr := sh.checked()
	if !known && !dir {
		// A file's size cannot be made up: 0 would read as an empty file.
		if cin, ok := r.f.storedInfo(sh, nil); ok {
			in = cin
		} else if lastErr == nil {
			return nil, syscall.ETIMEDOUT
		} else {
			return nil, r.f.errno(lastErr)
		}
	}
	entryOut := func(in vfs.Info) {
		r.f.entryOut(out, in, sh.isWritable())
		if !known {
			out.SetEntryTimeout(0)
			out.SetAttrTimeout(0)
		}
	}
	if child := r.GetChild(name); child != nil {
		switch n := child.Operations().(type) {
		case *dirNode:
			if dir && n.sh == sh {
				entryOut(n.selfInfo())
				return child, 0
			}
		case *fileNode:
			if !dir && n.sh == sh {
				entryOut(n.attrInfo(in))
				return child, 0
			}
		}
	}
	entryOut(in)
	if dir {
		d := newDirNode(sh, true)
		return r.NewInode(ctx, d, fs.StableAttr{Mode: syscall.S_IFDIR}), 0
	}
	n := &fileNode{remote: remote{sh: sh, isRoot: true}}
	n.setInfo(in)
	return r.NewInode(ctx, n, fs.StableAttr{Mode: syscall.S_IFREG}), 0
}

func (r *rootNode) Readdir(ctx context.Context) (_ fs.DirStream, errno syscall.Errno) {
	defer r.f.trace("root.Readdir")(&errno)
	shares := r.f.rootNames()
	out := make([]fuse.DirEntry, 0, len(shares))
	for _, sh := range shares {
		dir, _, _ := sh.state()
		mode := uint32(syscall.S_IFREG)
		if dir {
			mode = syscall.S_IFDIR
		}
		out = append(out, fuse.DirEntry{Name: sh.name, Mode: mode})
	}
	return fs.NewListDirStream(out), 0
}

// The root is managed by the agent: nothing is created, removed or renamed
// there by programs.

func (r *rootNode) Mkdir(context.Context, string, uint32, *fuse.EntryOut) (_ *fs.Inode, errno syscall.Errno) {
	defer r.f.trace("root.Mkdir")(&errno)
	return nil, syscall.EACCES
}

func (r *rootNode) Create(context.Context, string, uint32, uint32, *fuse.EntryOut) (_ *fs.Inode, _ fs.FileHandle, _ uint32, errno syscall.Errno) {
	defer r.f.trace("root.Create")(&errno)
	return nil, nil, 0, syscall.EACCES
}

func (r *rootNode) Unlink(context.Context, string) (errno syscall.Errno) {
	defer r.f.trace("root.Unlink")(&errno)
	return syscall.EACCES
}
func (r *rootNode) Rmdir(context.Context, string) (errno syscall.Errno) {
	defer r.f.trace("root.Rmdir")(&errno)
	return syscall.EACCES
}

func (r *rootNode) Rename(context.Context, string, fs.InodeEmbedder, string, uint32) (errno syscall.Errno) {
	defer r.f.trace("root.Rename")(&errno)
	return syscall.EACCES
}

func (r *rootNode) Symlink(context.Context, string, string, *fuse.EntryOut) (_ *fs.Inode, errno syscall.Errno) {
	defer r.f.trace("root.Symlink")(&errno)
	return nil, syscall.EACCES
}
