package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// spool is a durable queue kept in a directory: one file per job, moved
// between three sub-directories by atomic renames.
//
//	new/   pending jobs
//	work/  jobs claimed by a running consumer
//	done/  finished jobs
//
// A rename either happens or does not, so a job is always in exactly one
// place, and one that a crash leaves in work/ is found and retried by the
// next start (at-least-once delivery).
type spool struct {
	dir          string
	poll         time.Duration // how often to look for new jobs when none are pending
	exitWhenDone bool          // report io.EOF instead of waiting when new/ is empty
	pending      []string      // names read from new/ and not yet tried
}

// openSpool creates the directories if needed and puts jobs left in work/ by
// an earlier run back into new/. It returns how many it put back.
func openSpool(dir string) (*spool, int, error) {
	s := &spool{dir: dir, poll: 50 * time.Millisecond}
	for _, sub := range []string{"new", "work", "done"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, 0, err
		}
	}
	stranded, err := jobs(filepath.Join(dir, "work"))
	if err != nil {
		return nil, 0, err
	}
	for _, name := range stranded {
		if err := os.Rename(s.path("work", name), s.path("new", name)); err != nil {
			return nil, 0, err
		}
	}
	return s, len(stranded), nil
}

func (s *spool) path(sub, name string) string { return filepath.Join(s.dir, sub, name) }

// enqueue writes n new jobs. Each is written under a hidden name and renamed
// into place, so a consumer never sees half a file.
func (s *spool) enqueue(n int) error {
	stamp := time.Now().UnixNano()
	for i := range n {
		name := fmt.Sprintf("job-%d-%06d", stamp, i)
		tmp := s.path("new", "."+name)
		if err := os.WriteFile(tmp, []byte(name+"\n"), 0o644); err != nil {
			return err
		}
		if err := os.Rename(tmp, s.path("new", name)); err != nil {
			return err
		}
	}
	return nil
}

// claim moves one pending job to work/ and returns its name. It is the
// Worker's next function: it waits for a job until ctx ends, and once it has
// renamed a job it returns it even if ctx has ended meanwhile, so the job is
// handled rather than stranded in work/.
func (s *spool) claim(ctx context.Context) (string, error) {
	for {
		if len(s.pending) == 0 {
			names, err := jobs(filepath.Join(s.dir, "new"))
			if err != nil {
				return "", err
			}
			s.pending = names
		}
		for len(s.pending) > 0 {
			name := s.pending[0]
			s.pending = s.pending[1:]
			err := os.Rename(s.path("new", name), s.path("work", name))
			if err == nil {
				return name, nil
			}
			if !errors.Is(err, fs.ErrNotExist) {
				return "", err
			}
			// Another consumer claimed it first.
		}
		if s.exitWhenDone {
			return "", io.EOF
		}
		t := time.NewTimer(s.poll)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return "", ctx.Err()
		}
	}
}

// finish marks a claimed job done.
func (s *spool) finish(name string) error {
	return os.Rename(s.path("work", name), s.path("done", name))
}

// counts reports how many jobs are in each state.
func (s *spool) counts() (newN, workN, doneN int, err error) {
	var n [3]int
	for i, sub := range []string{"new", "work", "done"} {
		names, err := jobs(filepath.Join(s.dir, sub))
		if err != nil {
			return 0, 0, 0, err
		}
		n[i] = len(names)
	}
	return n[0], n[1], n[2], nil
}

// jobs lists the job files in dir, in name order, skipping hidden files
// (jobs still being written).
func jobs(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	return names, nil
}
