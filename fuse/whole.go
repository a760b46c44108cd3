package ocmfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
)

// Some servers do not serve byte ranges: reva answers 416 although its HEAD
// says "Accept-Ranges: bytes", others answer 200 with the whole body. An open
// file then switches to one plain GET of the whole file, copied into an
// unlinked temporary file as it arrives; reads at any offset wait for the
// stream to get there and are served from the copy, until the file is closed.

// errShortBody means the server sent less than the size it had announced:
// the data cannot be had, and a read must not look like the end of the file.
var errShortBody = errors.New("webdav GET: the server sent less than the file's size")

// wholeFile is one plain GET of a file, kept for the reads of one open.
type wholeFile struct {
	tmp  *os.File
	size int64 // what the reads expect

	mu    sync.Mutex
	cond  *sync.Cond
	have  int64 // bytes of the file in tmp
	done  bool
	err   error
	users int // the stream and the readers copying out of tmp
}

// newWholeFile creates the temporary copy in dir. The file is unlinked at
// once: nothing is left behind, even by a crash.
func newWholeFile(dir string, size int64) (*wholeFile, error) {
	tmp, err := os.CreateTemp(dir, "read-*.tmp")
	if err != nil {
		return nil, fmt.Errorf("read: temporary copy: %w", err)
	}
	_ = os.Remove(tmp.Name())
	w := &wholeFile{tmp: tmp, size: size, users: 1}
	w.cond = sync.NewCond(&w.mu)
	return w, nil
}

// fill copies the body of resp (a 200 answer with the whole file) into the
// temporary copy, or fetches it first when resp is nil.
func (w *wholeFile) fill(ctx context.Context, c *davClient, shareID, u string, resp *http.Response) {
	var err error
	if resp == nil {
		resp, err = c.getWhole(ctx, shareID, u)
	}
	if err == nil {
		err = w.copyBody(resp.Body)
		_ = resp.Body.Close()
	}
	w.mu.Lock()
	w.err, w.done = err, true
	w.mu.Unlock()
	w.cond.Broadcast()
	w.unuse()
}

func (w *wholeFile) copyBody(body io.Reader) error {
	buf := make([]byte, 256<<10)
	for w.have < w.size {
		n, err := body.Read(buf[:min(int64(len(buf)), w.size-w.have)])
		if n > 0 {
			if _, werr := w.tmp.WriteAt(buf[:n], w.have); werr != nil {
				return fmt.Errorf("read: temporary copy: %w", werr)
			}
			w.mu.Lock()
			w.have += int64(n)
			w.mu.Unlock()
			w.cond.Broadcast()
		}
		if err == io.EOF {
			if w.have < w.size {
				return errShortBody
			}
			break
		}
		if err != nil {
			return readErr("GET", err)
		}
	}
	return nil
}

func (w *wholeFile) unuse() {
	w.mu.Lock()
	w.users--
	last := w.users == 0
	w.mu.Unlock()
	if last {
		_ = w.tmp.Close()
	}
}

// failed reports whether the stream ended with an error.
func (w *wholeFile) failed() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.done && w.err != nil
}

// readInto copies [off, off+len(buf)) of the file into buf as the stream
// brings it, telling progress how many bytes of buf are valid. It ends early
// only with an error (or when ctx ends).
func (w *wholeFile) readInto(ctx context.Context, off int64, buf []byte, progress func(int)) (int, error) {
	end := min(off+int64(len(buf)), w.size)
	stop := context.AfterFunc(ctx, func() {
		w.mu.Lock()
		w.cond.Broadcast()
		w.mu.Unlock()
	})
	defer stop()
	w.mu.Lock()
	if w.users == 0 {
		w.mu.Unlock()
		return 0, errShortBody
	}
	w.users++
	w.mu.Unlock()
	defer w.unuse()
	pos := off
	for pos < end {
		w.mu.Lock()
		for w.have <= pos && !w.done && ctx.Err() == nil {
			w.cond.Wait()
		}
		have, done, err := w.have, w.done, w.err
		w.mu.Unlock()
		if have <= pos {
			if cerr := ctx.Err(); cerr != nil {
				return int(pos - off), cerr
			}
			if done && err == nil {
				err = errShortBody
			}
			return int(pos - off), err
		}
		k, rerr := w.tmp.ReadAt(buf[pos-off:min(have, end)-off], pos)
		pos += int64(k)
		if rerr != nil && !errors.Is(rerr, io.EOF) {
			return int(pos - off), fmt.Errorf("read: temporary copy: %w", rerr)
		}
		if progress != nil && k > 0 {
			progress(int(pos - off))
		}
	}
	return int(pos - off), nil
}
