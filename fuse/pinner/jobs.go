package pinner

import (
	"context"
	"strconv"
	"sync"
	"time"
)

// jobsKept is how long an ended job can still be asked for.
const jobsKept = time.Hour

// Job is a pin's download running in the background.
type Job struct {
	ID, Share, Path string
	Started         time.Time

	mu    sync.Mutex
	p     Progress
	ended time.Time
	err   error
	done  chan struct{}
}

// JobState is a snapshot of a job.
type JobState struct {
	Progress
	Running bool
	Err     error
	Ended   time.Time
}

// State returns the job's progress now.
func (j *Job) State() JobState {
	j.mu.Lock()
	defer j.mu.Unlock()
	return JobState{Progress: j.p, Running: j.ended.IsZero(), Err: j.err, Ended: j.ended}
}

// Done is closed when the job ends.
func (j *Job) Done() <-chan struct{} { return j.done }

// Start pins share/p and downloads it in the background (bounded by
// ctx, the mount's life). The checks that fail at once (a bad path, a
// path not in the share, an unreachable server) are returned here. A pin
// whose job still runs returns that job.
func (pn *Pinner) Start(ctx context.Context, share, p string) (*Job, error) {
	p, err := CleanPath(p)
	if err != nil {
		return nil, err
	}
	if j := pn.runningJob(share, p); j != nil {
		return j, nil
	}
	w, err := pn.start(ctx, share, p)
	if err != nil {
		return nil, err
	}
	if err := pn.o.Cache.Pin(share, p); err != nil {
		return nil, err
	}
	pn.mu.Lock()
	if j := pn.runningJobLocked(share, p); j != nil {
		pn.mu.Unlock()
		return j, nil
	}
	pn.nextID++
	j := &Job{ID: strconv.FormatInt(pn.o.Now().UnixNano(), 36) + "-" + strconv.Itoa(pn.nextID), Share: share, Path: p,
		Started: pn.o.Now(), done: make(chan struct{})}
	now := pn.o.Now()
	for id, old := range pn.jobs {
		if st := old.State(); !st.Running && now.Sub(st.Ended) > jobsKept {
			delete(pn.jobs, id)
		}
	}
	pn.jobs[j.ID] = j
	pn.jobsWG.Add(1)
	pn.mu.Unlock()
	go func() {
		defer pn.jobsWG.Done()
		defer close(j.done)
		p, err := pn.run(ctx, w, func(p Progress) {
			j.mu.Lock()
			j.p = p
			j.mu.Unlock()
		})
		if err != nil {
			pn.failed(share, w.path, err)
		}
		j.mu.Lock()
		j.p, j.err, j.ended = p, err, pn.o.Now()
		j.mu.Unlock()
	}()
	return j, nil
}

// Job returns the job with id, or nil.
func (pn *Pinner) Job(id string) *Job {
	pn.mu.Lock()
	defer pn.mu.Unlock()
	return pn.jobs[id]
}

// RunningJob returns the running job of share/p, or nil.
func (pn *Pinner) runningJob(share, p string) *Job {
	pn.mu.Lock()
	defer pn.mu.Unlock()
	return pn.runningJobLocked(share, p)
}

func (pn *Pinner) runningJobLocked(share, p string) *Job {
	for _, j := range pn.jobs {
		if j.Share == share && j.Path == p && j.State().Running {
			return j
		}
	}
	return nil
}

// RunningJob returns the id of the job downloading share/p now, or "".
func (pn *Pinner) RunningJob(share, p string) string {
	if j := pn.runningJob(share, p); j != nil {
		return j.ID
	}
	return ""
}

func (pn *Pinner) running(share, p string) bool { return pn.runningJob(share, p) != nil }

// Wait returns once no job runs; cancel their context first to end them.
func (pn *Pinner) Wait() { pn.jobsWG.Wait() }
