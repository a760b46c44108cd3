package main

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ocm-agent/ocm-agent/store"
	"github.com/ocm-agent/ocm-agent/tokens"
)

// storageResult is the cost of the durable writes behind one share.
type storageResult struct {
	Fsync        time.Duration // write 4 KiB + fsync, the floor of any durable write here
	SQLiteSerial time.Duration // one PutShare, one writer
	SQLiteConc   writers       // 16 writers at once, as concurrent requests do
	SQLiteMutex  writers       // 16 writers taking turns on a Go mutex
	SQLiteBatch  time.Duration // per row, 16 rows per transaction (group commit)
	FilePut      []filePut     // secrets=file Put at growing sizes
}

type writers struct {
	PerSecond float64
	Max       time.Duration
}

type filePut struct {
	Secrets int
	Bytes   int64
	Per     time.Duration
}

func measureStorage(dir string) (storageResult, error) {
	var r storageResult
	ctx := context.Background()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return r, err
	}

	// fsync floor.
	f, err := os.Create(filepath.Join(dir, "fsync.probe"))
	if err != nil {
		return r, err
	}
	buf := make([]byte, 4096)
	const fsyncs = 200
	t0 := time.Now()
	for i := 0; i < fsyncs; i++ {
		if _, err := f.WriteAt(buf, int64(i)*4096); err != nil {
			f.Close()
			return r, err
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return r, err
		}
	}
	r.Fsync = time.Since(t0) / fsyncs
	f.Close()

	// SQLite, as the agent opens it (WAL, synchronous=FULL).
	st, err := store.Open(ctx, filepath.Join(dir, "agent.db"))
	if err != nil {
		return r, err
	}
	defer st.Close()
	share := func(id string) store.Share {
		return store.Share{ID: id, Peer: "peer.example", ProviderID: id, Name: "doc-" + id + ".txt",
			ShareWith: "bob@agent.example", Owner: "alice@peer.example", Sender: "alice@peer.example",
			ShareType: "user", ResourceType: "file", Protocols: []string{"webdav"}, WebDAVURI: id,
			Permissions: []string{"read"}, State: store.StatePending}
	}
	const serial = 300
	t0 = time.Now()
	for i := 0; i < serial; i++ {
		if _, _, err := st.PutShare(ctx, share(fmt.Sprintf("s%d", i))); err != nil {
			return r, err
		}
	}
	r.SQLiteSerial = time.Since(t0) / serial
	var turn sync.Mutex
	for _, serialized := range []bool{false, true} {
		w, err := concurrentPuts(ctx, st, share, serialized, &turn)
		if err != nil {
			return r, err
		}
		if serialized {
			r.SQLiteMutex = w
		} else {
			r.SQLiteConc = w
		}
	}
	if r.SQLiteBatch, err = batchInserts(ctx, filepath.Join(dir, "batch.db")); err != nil {
		return r, err
	}

	// The encrypted secrets file: a Put appends one record, whatever the
	// number of secrets.
	fs, err := tokens.OpenFileStore(ctx, tokens.FileOptions{StateDir: filepath.Join(dir, "secrets"),
		ConfigDir: filepath.Join(dir, "config"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return r, err
	}
	n := 0
	for _, at := range []int{0, 500, 2000, 10_000} {
		fillTo := map[string][]byte{}
		for ; n < at; n++ {
			fillTo[fmt.Sprintf("share/%024x/secret", n)] = fmt.Appendf(nil, "s3cr3t-%d", n)
		}
		if err := fs.PutMany(ctx, fillTo); err != nil {
			return r, err
		}
		const batch = 50
		t0 := time.Now()
		for i := 0; i < batch; i++ {
			if err := fs.Put(ctx, fmt.Sprintf("share/%024x/secret", n), []byte(fmt.Sprintf("s3cr3t-%d", n))); err != nil {
				return r, err
			}
			n++
		}
		per := time.Since(t0) / batch
		fi, _ := os.Stat(fs.Path())
		var size int64
		if fi != nil {
			size = fi.Size()
		}
		r.FilePut = append(r.FilePut, filePut{Secrets: n, Bytes: size, Per: per})
	}
	return r, nil
}

// concurrentPuts runs 16 writers of 50 shares each, at once or taking
// turns on a mutex, and reports the throughput and the slowest PutShare.
func concurrentPuts(ctx context.Context, st *store.Store, share func(string) store.Share, serialized bool, turn *sync.Mutex) (writers, error) {
	const n, each = 16, 50
	var wg sync.WaitGroup
	var mu sync.Mutex
	var worst time.Duration
	errs := make(chan error, n)
	t0 := time.Now()
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				t1 := time.Now()
				if serialized {
					turn.Lock()
				}
				_, _, err := st.PutShare(ctx, share(fmt.Sprintf("c%v-%d-%d", serialized, w, i)))
				if serialized {
					turn.Unlock()
				}
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				worst = max(worst, time.Since(t1))
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return writers{}, err
	}
	return writers{PerSecond: n * each / time.Since(t0).Seconds(), Max: worst}, nil
}

// batchInserts measures group commit: rows of a share's size, 16 to a
// transaction, in a database opened with the agent's settings.
func batchInserts(ctx context.Context, path string) (time.Duration, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)&_txlock=immediate")
	if err != nil {
		return 0, err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE TABLE t (id TEXT PRIMARY KEY, body TEXT NOT NULL)`); err != nil {
		return 0, err
	}
	const txs, per = 40, 16
	body := strings.Repeat("x", 600)
	t0 := time.Now()
	for i := 0; i < txs; i++ {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return 0, err
		}
		for j := 0; j < per; j++ {
			if _, err := tx.ExecContext(ctx, `INSERT INTO t VALUES (?, ?)`, fmt.Sprintf("%d-%d", i, j), body); err != nil {
				tx.Rollback()
				return 0, err
			}
		}
		if err := tx.Commit(); err != nil {
			return 0, err
		}
	}
	return time.Since(t0) / (txs * per), nil
}
