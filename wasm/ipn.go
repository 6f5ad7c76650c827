package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"

	"tsconnect/controlws"
)

// Config is what the page passes to newIPN.
type Config struct {
	ControlURL string
	// AuthKey registers the node; "" means an interactive login: the node gets a URL
	// (Notify.BrowseToURL) where a user signs in to own it, ephemeral. Kept in memory only, never logged.
	AuthKey  string
	Hostname string // "" means "browser"
}

// Notify are the page's notification callbacks. Each, if non-nil, is called from a Go
// goroutine and must return quickly without calling back into Go synchronously.
type Notify struct {
	// State is called with "starting", "needs-login", "running" or "stopped".
	State func(state string)
	// NetMap is called with each new network map, as JSON (controlws.NetworkMap's form).
	NetMap func(netmapJSON string)
	// BrowseToURL is called when the user must open a URL: with no auth key, where to sign in
	// so that the node joins (state "needs-login" meanwhile).
	BrowseToURL func(url string)
	// PanicRecover is called when a goroutine of this IPN panicked; the IPN stops.
	PanicRecover func(msg string)
	// Log receives log lines. Secrets and terminal data are never logged.
	Log func(line string)
}

// IPN is one browser node: the plain Go API behind the global's newIPN.
type IPN struct {
	cfg     Config
	httpGet func(ctx context.Context, url string) ([]byte, error)
	newEng  func(Config, func(context.Context, string) ([]byte, error), *IPN) (engine, error)

	ctx    context.Context // canceled by Logout/Close
	cancel context.CancelFunc

	mu       sync.Mutex
	notify   Notify
	eng      engine
	started  chan struct{} // closed when Start returned
	startErr error
	state    string
	streams  int // open Dial streams, at most MaxStreams
}

// NewIPN checks cfg and returns an IPN that has not started yet. httpGet is how the node
// fetches control's key (the browser's fetch in the wasm).
func NewIPN(cfg Config, httpGet func(ctx context.Context, url string) ([]byte, error)) (*IPN, error) {
	if cfg.ControlURL == "" {
		return nil, withCode(controlws.CodeBadRequest, errors.New("createIPN: controlURL is required"))
	}
	if cfg.Hostname == "" {
		cfg.Hostname = "browser"
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &IPN{cfg: cfg, httpGet: httpGet, newEng: newNode, ctx: ctx, cancel: cancel}, nil
}

// Run starts the node with the page's notifications; it returns at once. Only the first
// call starts anything.
func (p *IPN) Run(n Notify) {
	p.mu.Lock()
	if p.started != nil {
		p.mu.Unlock()
		return
	}
	p.notify = n
	p.started = make(chan struct{})
	p.mu.Unlock()
	p.goSafe(func() {
		err := withCode(CodeInternal, errors.New("the node panicked while starting"))
		defer func() {
			p.mu.Lock()
			p.startErr = err
			close(p.started)
			p.mu.Unlock()
		}()
		err = p.start()
		if err != nil {
			p.logf("ipn: start failed: %v", err)
			p.setState("stopped")
		}
	})
}

func (p *IPN) start() error {
	eng, err := p.newEng(p.cfg, p.httpGet, p)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.eng = eng
	p.mu.Unlock()
	if err := eng.Start(p.ctx); err != nil {
		eng.Close()
		if p.ctx.Err() != nil {
			return withCode(CodeClosed, errors.New("logged out before the node started"))
		}
		return err
	}
	return nil
}

// Login waits until the node runs (registered, first map applied, relay connected) and
// returns the reason if it could not start. Without an auth key that includes the
// interactive login: Run already asked for it (Notify.BrowseToURL), Login waits for the
// user to complete it (bounded by ctx; control lets a login URL expire after 10 minutes).
func (p *IPN) Login(ctx context.Context) error {
	p.mu.Lock()
	started := p.started
	p.mu.Unlock()
	if started == nil {
		return withCode(CodeNotStarted, errors.New("login: call run() first"))
	}
	select {
	case <-started:
	case <-ctx.Done():
		return ctx.Err()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.startErr
}

// Logout deletes the node at control (an ephemeral node is gone at once) and stops it.
func (p *IPN) Logout(ctx context.Context) error {
	p.cancel()
	p.mu.Lock()
	eng, started := p.eng, p.started
	p.mu.Unlock()
	if started != nil {
		<-started // Start returns promptly once p.ctx is canceled
	}
	if eng == nil {
		return nil
	}
	return eng.Logout(ctx)
}

// running returns the engine once the node runs, or why it does not.
func (p *IPN) running(ctx context.Context) (engine, error) {
	if err := p.Login(ctx); err != nil {
		return nil, err
	}
	if p.ctx.Err() != nil {
		return nil, withCode(CodeClosed, errors.New("the node was logged out"))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.eng, nil
}

func (p *IPN) setState(s string) {
	p.mu.Lock()
	p.state = s
	f := p.notify.State
	p.mu.Unlock()
	if f != nil {
		f(s)
	}
}

func (p *IPN) setNetMap(nm *controlws.NetworkMap) {
	p.mu.Lock()
	f := p.notify.NetMap
	p.mu.Unlock()
	if f == nil || nm == nil {
		return
	}
	b, err := json.Marshal(nm)
	if err != nil {
		p.logf("ipn: encoding the network map: %v", err)
		return
	}
	f(string(b))
}

func (p *IPN) logf(format string, args ...any) {
	p.mu.Lock()
	f := p.notify.Log
	p.mu.Unlock()
	if f != nil {
		f(fmt.Sprintf(format, args...))
	}
}

// goSafe runs f in a goroutine; a panic is reported through Notify.PanicRecover and stops
// the node instead of killing the whole Go runtime.
func (p *IPN) goSafe(f func()) {
	go func() {
		defer func() {
			if r := recover(); r != nil {
				msg := fmt.Sprintf("panic: %v\n%s", r, debug.Stack())
				p.mu.Lock()
				pr, eng := p.notify.PanicRecover, p.eng
				p.mu.Unlock()
				p.cancel()
				if eng != nil {
					eng.Close()
				}
				if pr != nil {
					pr(msg)
				}
			}
		}()
		f()
	}()
}

func (p *IPN) browseToURL(url string) {
	p.mu.Lock()
	f := p.notify.BrowseToURL
	p.mu.Unlock()
	if f != nil {
		f(url)
	}
}
