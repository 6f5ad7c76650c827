package agent

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"tsconnect/controlws"
	"tsconnect/policy/rules"
)

// Fakes of a check hold's inputs (checkhold.go): control's check calls, the policy, the
// clock and the waiting SSH client. Each records what the hold did to it.

// waitFor bounds every wait of these tests: a hold that does not react in this long is stuck.
const waitFor = 10 * time.Second

// checkCall is one SSHCheck call the hold made; the test answers it with reply.
type checkCall struct {
	ctx     context.Context
	req     controlws.SSHCheckRequest
	pending func(controlws.SSHCheckVerdict)
	replies chan checkReply
}

type checkReply struct {
	v   *controlws.SSHCheckVerdict
	err error
}

func (c *checkCall) reply(v *controlws.SSHCheckVerdict, err error) {
	c.replies <- checkReply{v, err}
}

// verdict answers c with a final verdict from control.
func (c *checkCall) verdict(verdict, message string) {
	c.reply(&controlws.SSHCheckVerdict{Verdict: verdict, Message: message}, nil)
}

// cancelled waits until the hold cancelled c (control drops the check then), and answers
// it as the real client does.
func (c *checkCall) cancelled(t *testing.T) {
	t.Helper()
	select {
	case <-c.ctx.Done():
	case <-time.After(waitFor):
		t.Fatalf("the check call was not cancelled within %v", waitFor)
	}
	c.reply(nil, c.ctx.Err())
}

// fakeControl hands every SSHCheck call to the test, which answers it; the call returns
// only with the test's answer (as the real client returns only once control's side ended).
type fakeControl struct{ calls chan *checkCall }

func newFakeControl() *fakeControl { return &fakeControl{calls: make(chan *checkCall, 16)} }

func (f *fakeControl) SSHCheck(ctx context.Context, req controlws.SSHCheckRequest, onPending func(controlws.SSHCheckVerdict)) (*controlws.SSHCheckVerdict, error) {
	c := &checkCall{ctx: ctx, req: req, pending: onPending, replies: make(chan checkReply, 1)}
	f.calls <- c
	r := <-c.replies
	return r.v, r.err
}

// next returns the hold's next call to control.
func (f *fakeControl) next(t *testing.T) *checkCall {
	t.Helper()
	select {
	case c := <-f.calls:
		return c
	case <-time.After(waitFor):
		t.Fatalf("the hold asked control nothing within %v", waitFor)
	}
	return nil
}

// fakePolicy is the map a hold re-decides under: set installs a new verdict and wakes it.
type fakePolicy struct {
	mu      sync.Mutex
	v       rules.Verdict
	err     error
	changed chan struct{}
	asked   chan struct{} // gets a value after every verdictFor
}

func newFakePolicy(v rules.Verdict) *fakePolicy {
	return &fakePolicy{v: v, asked: make(chan struct{}, 16)}
}

func (p *fakePolicy) mapChanged() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.changed == nil {
		p.changed = make(chan struct{})
	}
	return p.changed
}

func (p *fakePolicy) verdictFor(netip.AddrPort, string) (rules.Verdict, controlws.Node, error) {
	p.mu.Lock()
	v, err := p.v, p.err
	p.mu.Unlock()
	p.asked <- struct{}{}
	return v, controlws.Node{}, err
}

// set makes v (or err) the policy's verdict and announces a new map.
func (p *fakePolicy) set(v rules.Verdict, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.v, p.err = v, err
	if p.changed != nil {
		close(p.changed)
		p.changed = nil
	}
}

// waitAsked waits until the hold re-evaluated the policy.
func (p *fakePolicy) waitAsked(t *testing.T) {
	t.Helper()
	select {
	case <-p.asked:
	case <-time.After(waitFor):
		t.Fatalf("the hold did not re-evaluate the policy within %v", waitFor)
	}
}

// fakeClock is time that moves only when the test advances it.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
	armed  chan struct{} // gets a value whenever a timer is set
}

type fakeTimer struct {
	at      time.Time
	f       func()
	stopped bool // stopped or fired
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Unix(1_800_000_000, 0), armed: make(chan struct{}, 1024)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	t := &fakeTimer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	c.mu.Unlock()
	c.armed <- struct{}{}
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		was := !t.stopped
		t.stopped = true
		return was
	}
}

// advance moves the clock by d and fires the timers due.
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []func()
	for _, t := range c.timers {
		if !t.stopped && !t.at.After(c.now) {
			t.stopped = true
			due = append(due, t.f)
		}
	}
	c.mu.Unlock()
	for _, f := range due {
		go f()
	}
}

// fakeClient is the SSH client waiting for the verdict: it records banners and extensions.
type fakeClient struct {
	mu       sync.Mutex
	banners  []string
	extended []time.Duration
}

func (c *fakeClient) Banner(m string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.banners = append(c.banners, m)
	return nil
}

func (c *fakeClient) Extend(d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.extended = append(c.extended, d)
	return nil
}

func (c *fakeClient) shown() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.banners...)
}

// fakeRequest is a login for Agent.authorize from remote as user, its client a fakeClient.
type fakeRequest struct {
	fakeClient
	remote netip.AddrPort
	user   string
}

func (r *fakeRequest) Remote() netip.AddrPort { return r.remote }
func (r *fakeRequest) User() string           { return r.user }
