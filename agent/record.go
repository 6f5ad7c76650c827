package agent

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"tsconnect/internal/safetext"
	"tsconnect/recorder"
	"tsconnect/sshd"
)

// Bounds on opening a recording: each recorder gets recorderTimeout to accept, all of them
// together openTimeout (so an enforced login is refused within it).
const (
	recorderTimeout = 2 * time.Second
	openTimeout     = 5 * time.Second
)

// Stages of a recording failure, the label of tsconnect_agent_ssh_recording_failures_total.
const (
	failStart  = "start"  // no recorder accepted the recording
	failMidway = "midway" // the upload broke during the session
	failEnd    = "end"    // the recorder did not confirm the end
)

// Bounds on what a recording's opening quotes and keeps.
const (
	maxReasonsN = 4   // recorder refusals quoted in a refusal
	reasonLimit = 200 // bytes of each
	// maxHeaderCommand bounds the exec command kept in the header: escaped, it stays well
	// within recorder.MaxHeaderLine whatever the command holds.
	maxHeaderCommand = 512
)

// record is the SSH server's Server.Record: it opens a recording of the session on the
// first of the login's recorders that accepts it, dialing them over the overlay.
// Without a recorder, an enforced login's session is refused; an unenforced one runs
// unrecorded (logged and counted).
func (a *Agent) record(ctx context.Context, req sshd.RecordRequest) (sshd.Recording, error) {
	spec := req.Login.Record
	if spec == nil || len(spec.Recorders) == 0 {
		return nil, nil
	}
	h := recorder.Header{Width: 80, Height: 24, Timestamp: time.Now().Unix(), Command: safetext.Bounded(req.Command, maxHeaderCommand),
		SrcUser: spec.SrcUser, SrcNode: spec.SrcNode, LocalUser: req.Login.LocalUser}
	if req.PTY {
		if req.Cols > 0 && req.Cols <= recorder.MaxTermSize {
			h.Width = int(req.Cols)
		}
		if req.Rows > 0 && req.Rows <= recorder.MaxTermSize {
			h.Height = int(req.Rows)
		}
		if req.Term != "" {
			h.Env = map[string]string{"TERM": req.Term}
		}
	}
	octx, cancel := context.WithTimeout(ctx, openTimeout)
	defer cancel()
	var reasons []string
	for _, addr := range spec.Recorders {
		if octx.Err() != nil {
			reasons = append(reasons, "no time left for the others")
			break
		}
		rctx, rcancel := context.WithTimeout(octx, recorderTimeout)
		u, err := recorder.StartUpload(rctx, a.node.Dial, addr.String(), h)
		rcancel()
		if err == nil {
			a.logf("agent: recording the session of %s as %q to %s as %s", req.Login.Source, req.Login.LocalUser, addr, u.ID())
			return newRecording(a, u, spec, addr), nil
		}
		if len(reasons) < maxReasonsN {
			reasons = append(reasons, fmt.Sprintf("%s: %s", addr, safetext.Bounded(err.Error(), reasonLimit)))
		}
	}
	why := "no recorder accepted the recording (" + strings.Join(reasons, "; ") + ")"
	a.recordingFailed(failStart)
	if spec.Enforce {
		a.logf("agent: refusing the session of %s as %q: it must be recorded and %s", req.Login.Source, req.Login.LocalUser, why)
		return nil, fmt.Errorf("this session must be recorded (enforceRecorder), and %s", why)
	}
	a.logf("agent: the session of %s as %q runs unrecorded: %s", req.Login.Source, req.Login.LocalUser, why)
	return nil, nil
}

// recordingFailed counts a recording failure at stage.
func (a *Agent) recordingFailed(stage string) {
	if a.recFailures != nil {
		a.recFailures.WithLabelValues(stage).Inc()
	}
}

// recording is one session's sshd.Recording: an upload, and what its failure means.
type recording struct {
	a      *Agent
	u      *recorder.Upload
	spec   *sshd.RecordSpec
	to     netip.AddrPort
	failed chan struct{} // closed when an enforced recording broke
	err    error
	done   chan struct{} // closed when the session ends
}

func newRecording(a *Agent, u *recorder.Upload, spec *sshd.RecordSpec, to netip.AddrPort) *recording {
	r := &recording{a: a, u: u, spec: spec, to: to, failed: make(chan struct{}), done: make(chan struct{})}
	go r.watch()
	return r
}

// watch reacts to the upload breaking: an enforced session is cut, another goes on.
func (r *recording) watch() {
	select {
	case <-r.u.Failed():
	case <-r.done:
		return
	}
	select {
	case <-r.done: // Close counts a failure at the end
		return
	default:
	}
	err := r.u.Err()
	r.a.recordingFailed(failMidway)
	r.a.logf("agent: recording %s to %s broke: %v", r.u.ID(), r.to, err)
	if r.spec.Enforce {
		r.err = fmt.Errorf("the recording of this session broke, and it must be recorded (enforceRecorder): %v", err)
		close(r.failed)
	}
}

func (r *recording) Output(p []byte) { r.u.Output(p) }

func (r *recording) Input(p []byte) {
	if r.spec.Input {
		r.u.Input(p)
	}
}

func (r *recording) Resize(cols, rows uint32) { r.u.Resize(cols, rows) }

func (r *recording) Failed() <-chan struct{} { return r.failed }

func (r *recording) Err() error { return r.err }

func (r *recording) ID() string { return r.u.ID() }

func (r *recording) Close(exitCode int) {
	close(r.done)
	select {
	case <-r.u.Failed(): // already counted by watch
		r.u.Abort()
		return
	default:
	}
	if err := r.u.Finish(exitCode); err != nil {
		r.a.recordingFailed(failEnd)
		r.a.logf("agent: recording %s to %s did not end cleanly: %v", r.u.ID(), r.to, err)
		return
	}
	r.a.logf("agent: recording %s to %s ended", r.u.ID(), r.to)
}
