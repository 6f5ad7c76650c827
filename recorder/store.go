package recorder

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Defaults of Options.
const (
	DefaultMinFree            = 256 << 20
	DefaultFlushDelay         = 250 * time.Millisecond
	DefaultMaxActive          = 256
	DefaultMaxActivePerSource = 32
)

// Errors refusing a new recording (or cutting one that runs).
var (
	ErrStorageFull = errors.New("recorder: storage is full")
	ErrQuota       = errors.New("recorder: the source's recording quota is used up")
	ErrBusy        = errors.New("recorder: too many recordings in progress")
	ErrNotFound    = errors.New("recorder: no such recording")
)

// Options configure a Store. The zero value means the defaults.
type Options struct {
	// MinFree is the free space (bytes) below which new recordings are refused:
	// 0 means DefaultMinFree, negative means no floor (only ENOSPC stops a recording).
	MinFree int64
	// SourceQuota bounds the bytes of recordings one source keeps; 0 means no quota.
	SourceQuota int64
	// Retention is how long a finished recording is kept (from its end); 0 means forever.
	Retention time.Duration
	// FlushDelay is how long arrived output may wait in memory before it is written.
	FlushDelay time.Duration
	// MaxActive and MaxActivePerSource bound the recordings in progress, in all and
	// per source.
	MaxActive, MaxActivePerSource int
	// Logf, if non-nil, logs the store's events.
	Logf func(format string, args ...any)
	// Now, if non-nil, is the clock (for tests).
	Now func() time.Time
}

// Store is a directory of recordings. It is safe for concurrent use.
type Store struct {
	dir  string
	opts Options

	mu       sync.Mutex
	recs     map[string]*entry
	usage    map[string]int64 // bytes kept, by source
	activeBy map[string]int   // recordings in progress, by source
	active   int
}

type entry struct {
	meta Meta    // guarded by Store.mu
	live *Writer // non-nil while recording
}

// Open opens (creating it, mode 0700) the store in dir. Recordings a crash left in
// progress are closed as Unknown, their last partial line cut; leftovers of an
// interrupted write or deletion are removed.
func Open(dir string, opts Options) (*Store, error) {
	if opts.MinFree == 0 {
		opts.MinFree = DefaultMinFree
	}
	if opts.FlushDelay <= 0 {
		opts.FlushDelay = DefaultFlushDelay
	}
	if opts.MaxActive <= 0 {
		opts.MaxActive = DefaultMaxActive
	}
	if opts.MaxActivePerSource <= 0 {
		opts.MaxActivePerSource = DefaultMaxActivePerSource
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("recorder: storage: %w", err)
	}
	s := &Store{dir: dir, opts: opts, recs: map[string]*entry{}, usage: map[string]int64{}, activeBy: map[string]int{}}
	if err := s.recover(); err != nil {
		return nil, err
	}
	return s, nil
}

// recover loads every recording's metadata, closing unfinished ones.
func (s *Store) recover() error {
	des, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("recorder: storage: %w", err)
	}
	casts := map[string]bool{}
	for _, de := range des {
		name := de.Name()
		switch {
		case strings.HasSuffix(name, ".tmp"):
			os.Remove(filepath.Join(s.dir, name))
		case strings.HasSuffix(name, ".cast"):
			casts[strings.TrimSuffix(name, ".cast")] = true
		}
	}
	for _, de := range des {
		id, ok := strings.CutSuffix(de.Name(), ".json")
		if !ok || !validID(id) {
			continue
		}
		m, err := loadMeta(s.dir, id)
		if err != nil {
			s.opts.Logf("recorder: skipping %s: %v", id, err)
			delete(casts, id) // keep its file for a person to look at
			continue
		}
		if !casts[id] {
			s.opts.Logf("recorder: %s has no .cast (an interrupted deletion); dropping its metadata", id)
			os.Remove(filepath.Join(s.dir, id+".json"))
			continue
		}
		delete(casts, id)
		if m.State == Recording {
			if err := s.closeUnfinished(m); err != nil {
				return err
			}
		}
		s.recs[id] = &entry{meta: *m}
		s.usage[m.Source] += m.Size
	}
	for id := range casts {
		if validID(id) {
			s.opts.Logf("recorder: %s.cast has no metadata (an interrupted deletion); removing it", id)
			os.Remove(filepath.Join(s.dir, id+".cast"))
		}
	}
	return nil
}

// closeUnfinished ends m, found in progress at Open, as Unknown at its file's last change.
func (s *Store) closeUnfinished(m *Meta) error {
	path := filepath.Join(s.dir, m.ID+".cast")
	size, mtime, err := cutPartialLine(path)
	if err != nil {
		return fmt.Errorf("recorder: closing unfinished %s: %w", m.ID, err)
	}
	m.State, m.End, m.Size, m.Error = Unknown, mtime, size, "the recorder stopped during the recording"
	s.opts.Logf("recorder: %s was in progress when the recorder stopped; closed as %s (%d bytes)", m.ID, Unknown, size)
	return saveMeta(s.dir, m)
}

// cutPartialLine truncates the file at path after its last newline (lines are bounded, so
// the last one is found within MaxEventLine bytes).
func cutPartialLine(path string) (size int64, mtime time.Time, err error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return 0, time.Time{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, time.Time{}, err
	}
	size, mtime = st.Size(), st.ModTime()
	n := min(size, MaxEventLine+MaxHeaderLine)
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, size-n); err != nil && err != io.EOF {
		return 0, mtime, err
	}
	keep := size - n + int64(strings.LastIndexByte(string(buf), '\n')+1)
	if keep < size && (keep > size-n || size == n) {
		if err := f.Truncate(keep); err != nil {
			return 0, mtime, err
		}
		size = keep
	}
	return size, mtime, nil
}

// sizeText is n bytes for a person: "512 KiB", "3.5 MiB", "2.0 GiB".
func sizeText(n int64) string {
	switch {
	case n < 1<<20:
		return fmt.Sprintf("%d KiB", n>>10)
	case n < 1<<30:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
}

// validID accepts the IDs newID makes (and nothing that could leave the directory).
func validID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-') {
			return false
		}
	}
	return true
}

// newID is a recording ID that sorts by start time: 20261203T053100Z-<8 random hex>.
func newID(t time.Time) string {
	var b [4]byte
	rand.Read(b[:])
	return t.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

// Create starts a recording of header h uploaded by source (the node logged in to): it
// refuses, with ErrStorageFull, ErrQuota or ErrBusy wrapped in a sentence, when the storage
// is below its free-space floor, source's quota is used up, or too many are in progress.
func (s *Store) Create(h Header, source string) (*Writer, error) {
	if err := checkIdentity(source); err != nil {
		return nil, fmt.Errorf("recorder: source: %w", err)
	}
	if free, ok := freeSpace(s.dir); ok && s.opts.MinFree > 0 && free < s.opts.MinFree {
		return nil, fmt.Errorf("%w: %s free, new recordings need %s", ErrStorageFull, sizeText(free), sizeText(s.opts.MinFree))
	}
	now := s.opts.Now()
	s.mu.Lock()
	switch {
	case s.opts.SourceQuota > 0 && s.usage[source] >= s.opts.SourceQuota:
		s.mu.Unlock()
		return nil, fmt.Errorf("%w: %s keeps %s of recordings, its quota is %s", ErrQuota, source, sizeText(s.usage[source]), sizeText(s.opts.SourceQuota))
	case s.active >= s.opts.MaxActive:
		s.mu.Unlock()
		return nil, fmt.Errorf("%w: %d in progress", ErrBusy, s.active)
	case s.activeBy[source] >= s.opts.MaxActivePerSource:
		s.mu.Unlock()
		return nil, fmt.Errorf("%w: %d in progress from %s", ErrBusy, s.activeBy[source], source)
	}
	s.active++
	s.activeBy[source]++
	s.mu.Unlock()
	w, err := s.create(h, source, now)
	if err != nil {
		s.mu.Lock()
		s.active--
		s.activeBy[source]--
		s.mu.Unlock()
		return nil, err
	}
	return w, nil
}

func (s *Store) create(h Header, source string, now time.Time) (*Writer, error) {
	m := Meta{ID: newID(now), Source: source, TargetNode: source, SrcUser: h.SrcUser, SrcNode: h.SrcNode,
		LocalUser: h.LocalUser, Width: h.Width, Height: h.Height, Start: now, State: Recording}
	if err := saveMeta(s.dir, &m); err != nil {
		return nil, s.storageErr(err)
	}
	path := filepath.Join(s.dir, m.ID+".cast")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		os.Remove(filepath.Join(s.dir, m.ID+".json"))
		return nil, s.storageErr(err)
	}
	w := newWriter(s, &m, f)
	if err := w.writeHeader(h); err != nil {
		f.Close()
		os.Remove(path)
		os.Remove(filepath.Join(s.dir, m.ID+".json"))
		return nil, s.storageErr(err)
	}
	s.mu.Lock()
	s.recs[m.ID] = &entry{meta: m, live: w}
	s.usage[source] += w.size
	s.mu.Unlock()
	s.opts.Logf("recorder: %s started: %s on %s as %s, on %s", m.ID, m.SrcUser, m.SrcNode, m.LocalUser, source)
	return w, nil
}

// storageErr names a full disk as ErrStorageFull.
func (s *Store) storageErr(err error) error {
	if isNoSpace(err) {
		return fmt.Errorf("%w: %v", ErrStorageFull, err)
	}
	return fmt.Errorf("recorder: storage: %w", err)
}

// List returns the recordings' metadata, newest first.
func (s *Store) List() []Meta {
	s.mu.Lock()
	out := make([]Meta, 0, len(s.recs))
	for _, e := range s.recs {
		out = append(out, e.current())
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b Meta) int { return strings.Compare(b.ID, a.ID) })
	return out
}

// Get returns one recording's metadata.
func (s *Store) Get(id string) (Meta, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.recs[id]
	if !ok {
		return Meta{}, ErrNotFound
	}
	return e.current(), nil
}

// current is e's metadata with the size written so far while recording (Store.mu held).
func (e *entry) current() Meta {
	m := e.meta
	if e.live != nil {
		m.Size = e.live.written.Load()
	}
	return m
}

// OpenCast opens recording id's .cast file for reading; live is its Writer while it is
// in progress (nil once finished: then the file is complete).
func (s *Store) OpenCast(id string) (f *os.File, live *Writer, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.recs[id]
	if !ok {
		return nil, nil, ErrNotFound
	}
	f, err = os.Open(filepath.Join(s.dir, id+".cast"))
	if err != nil {
		return nil, nil, fmt.Errorf("recorder: %s: %w", id, err)
	}
	return f, e.live, nil
}

// Usage is the bytes of recordings source keeps.
func (s *Store) Usage(source string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.usage[source]
}

// Sweep deletes the finished recordings that ended more than Retention ago and returns
// how many; with no Retention it deletes nothing.
func (s *Store) Sweep() int {
	if s.opts.Retention <= 0 {
		return 0
	}
	cut := s.opts.Now().Add(-s.opts.Retention)
	s.mu.Lock()
	var old []Meta
	for id, e := range s.recs {
		if e.live == nil && e.meta.End.Before(cut) {
			old = append(old, e.meta)
			delete(s.recs, id)
			s.usage[e.meta.Source] -= e.meta.Size
		}
	}
	s.mu.Unlock()
	for _, m := range old {
		// The .cast first: a crash in between leaves metadata without a file, which Open drops.
		if err := os.Remove(filepath.Join(s.dir, m.ID+".cast")); err != nil && !os.IsNotExist(err) {
			s.opts.Logf("recorder: retention: %v", err)
		}
		os.Remove(filepath.Join(s.dir, m.ID+".json"))
	}
	if len(old) > 0 {
		s.opts.Logf("recorder: retention %v: deleted %d recordings", s.opts.Retention, len(old))
	}
	return len(old)
}

// SweepEvery is how often RunSweeper sweeps: a 24th of Retention, from a minute to an hour.
func (s *Store) SweepEvery() time.Duration {
	return min(max(s.opts.Retention/24, time.Minute), time.Hour)
}

// RunSweeper sweeps every SweepEvery until done is closed.
func (s *Store) RunSweeper(done <-chan struct{}) {
	if s.opts.Retention <= 0 {
		return
	}
	t := time.NewTicker(s.SweepEvery())
	defer t.Stop()
	for {
		s.Sweep()
		select {
		case <-done:
			return
		case <-t.C:
		}
	}
}
