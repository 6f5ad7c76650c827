package agent

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"tsconnect/controlws"
	"tsconnect/internal/atomicfile"
)

// The audit journal keeps the audit queue's records in the state dir, one line a record:
// the CRC-32 (IEEE) of the record's JSON in 8 hex digits, a space, the JSON, a newline. A
// new record is appended; when control has stored some, or the queue dropped its oldest,
// the file is rewritten with what waits (a temporary file renamed over it, so a crash
// leaves the old file or the new one). On start the agent reads it back: a line that does
// not check (a write torn by a crash, a damaged disk) ends what is read, and is logged.
// Appends are not synced: a crash of the agent loses none, a crash of the machine may lose
// the last ones.
const (
	auditJournalFile = "ssh-audit.jsonl"
	// maxJournalLine bounds one line read back; a record within controlws's bounds is
	// well under it, even with every character escaped.
	maxJournalLine = 16 << 10
	// maxJournalRead bounds what is read back of the file.
	maxJournalRead = auditQueueBytes + auditQueueBytes/4 + maxJournalLine
)

// auditJournal is the open journal of an audit queue; its methods run under the queue's mutex.
type auditJournal struct {
	path  string
	f     *os.File // opened to append
	lines int      // in the file
	size  int      // bytes in the file
	bad   bool     // the last write failed: the next one rewrites the file
	logf  func(format string, args ...any)
}

// journalLine is r's line in the journal.
func journalLine(r *controlws.SSHAuditRecord) []byte {
	js, _ := json.Marshal(r)
	return fmt.Appendf(nil, "%08x %s\n", crc32.ChecksumIEEE(js), js)
}

// parseJournalLine is the record of line (without its newline), or what is wrong with it.
func parseJournalLine(line []byte) (controlws.SSHAuditRecord, error) {
	var r controlws.SSHAuditRecord
	sum, js, ok := bytes.Cut(line, []byte{' '})
	var want uint32
	if !ok || len(sum) != 8 {
		return r, errors.New("no checksum")
	}
	if _, err := fmt.Sscanf(string(sum), "%08x", &want); err != nil || crc32.ChecksumIEEE(js) != want {
		return r, errors.New("checksum mismatch")
	}
	if err := json.Unmarshal(js, &r); err != nil {
		return r, err
	}
	return r, r.Validate()
}

// openAuditJournal reads the journal in dir (none: an empty one), keeps its last records
// within the queue's bounds (dropped counts those it cannot keep), rewrites the file with
// them and opens it to append.
func openAuditJournal(dir string, logf func(string, ...any)) (*auditJournal, []auditEntry, int, error) {
	j := &auditJournal{path: filepath.Join(dir, auditJournalFile), logf: logf}
	// A rewrite cut short by a crash leaves its temporary file (atomicfile's name for it).
	tmps, _ := filepath.Glob(filepath.Join(dir, ".tmp-"+auditJournalFile+"*"))
	for _, tmp := range tmps {
		os.Remove(tmp)
	}
	var recs []auditEntry
	dropped := 0
	f, err := os.Open(j.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, nil, 0, fmt.Errorf("agent: SSH audit journal: %v", err)
	default:
		recs, dropped, err = readAuditJournal(f, j.path, logf)
		f.Close()
		if err != nil {
			return nil, nil, 0, err
		}
	}
	if err := j.rewrite(recs); err != nil {
		return nil, nil, 0, fmt.Errorf("agent: SSH audit journal: %v", err)
	}
	return j, recs, dropped, nil
}

// readAuditJournal reads the records of r up to the first line that does not check, and
// keeps the last within the queue's bounds; dropped is how many older ones it did not keep.
func readAuditJournal(r io.Reader, path string, logf func(string, ...any)) (recs []auditEntry, dropped int, err error) {
	sc := bufio.NewScanner(io.LimitReader(r, maxJournalRead))
	sc.Buffer(make([]byte, 0, 4096), maxJournalLine)
	total, n := 0, 0
	for sc.Scan() {
		n++
		rec, err := parseJournalLine(sc.Bytes())
		if err != nil {
			logf("agent: SSH audit journal %s: line %d is damaged (%v): dropped with what follows it", path, n, err)
			break
		}
		size := len(sc.Bytes()) + 1
		recs = append(recs, auditEntry{rec, size})
		total += size
		for len(recs) > auditQueueMax || total > auditQueueBytes {
			total -= recs[0].size
			recs = recs[1:]
			dropped++
		}
	}
	if err := sc.Err(); err != nil {
		if !errors.Is(err, bufio.ErrTooLong) {
			return nil, 0, fmt.Errorf("agent: SSH audit journal: %v", err)
		}
		logf("agent: SSH audit journal %s: line %d is over %d bytes: dropped with what follows it", path, n+1, maxJournalLine)
	}
	return recs, dropped, nil
}

// append writes line, the record just queued, to the journal; recs are the records queued
// now (with it), bytes their lines' sizes. The file is rewritten instead when the last
// write failed, or when records the queue dropped fill a fifth of it.
func (j *auditJournal) append(line []byte, recs []auditEntry, bytes int) {
	if j.bad || j.lines-len(recs) > auditQueueMax/4 || j.size-bytes > auditQueueBytes/4 {
		j.rewrite(recs)
		return
	}
	if _, err := j.f.Write(line); err != nil {
		j.fail(err)
		return
	}
	j.lines++
	j.size += len(line)
}

// rewrite replaces the journal's content with recs.
func (j *auditJournal) rewrite(recs []auditEntry) error {
	var buf []byte
	for i := range recs {
		buf = append(buf, journalLine(&recs[i].rec)...)
	}
	if j.f != nil {
		j.f.Close()
		j.f = nil
	}
	err := atomicfile.WriteFile(j.path, buf)
	if err == nil {
		j.f, err = os.OpenFile(j.path, os.O_WRONLY|os.O_APPEND, 0)
	}
	if err != nil {
		j.fail(err)
		return err
	}
	if j.bad {
		j.logf("agent: SSH audit journal %s: writing again", j.path)
	}
	j.bad, j.lines, j.size = false, len(recs), len(buf)
	return nil
}

// fail notes a failed write, logging the first of a run; the records stay queued in memory.
func (j *auditJournal) fail(err error) {
	if !j.bad {
		j.logf("agent: SSH audit journal: %v (the queued records are kept in memory until it writes again)", err)
	}
	j.bad = true
}

// close closes the file.
func (j *auditJournal) close() {
	if j.f != nil {
		j.f.Close()
		j.f = nil
	}
}
