//go:build js

package main

import (
	"context"
	"errors"
	"fmt"
	"syscall/js"

	"tsconnect/internal/jsbridge"
)

// The bridge: the only file that imports syscall/js. It installs one global,
//
//	globalThis.__tsconnect = { version, newIPN(config) }
//
// newIPN({controlURL, authKey?, hostname?}) (no authKey: interactive login) returns an Error (bad config) or {run(notify), login(), logout(), ssh(host,
// user, opts), dial(host, port, opts)}; login and logout return Promises; ssh and dial return
// {write(Uint8Array), resize(rows, cols), ack(n), close(), closeWrite()}; a dial's opts.onWritten(n)
// returns write credit. Terminal data crosses as Uint8Array both ways; output is
// flow-controlled: at most OutputWindow bytes go to onData before ack(n) returns credit for them. Go calls the
// page's callbacks synchronously from goroutines: they must return quickly and must not
// call back into Go synchronously (the npm package's Worker only posts messages).

func main() {
	js.Global().Set("__tsconnect", js.ValueOf(map[string]any{
		"version": "1",
		"newIPN":  js.FuncOf(jsNewIPN),
	}))
	select {}
}

// jsNewIPN is newIPN(config): it returns the IPN object, or an Error with a code for a bad config.
func jsNewIPN(this js.Value, args []js.Value) any {
	cfg := jsbridge.Arg(args, 0)
	p, err := NewIPN(Config{
		ControlURL: str(cfg, "controlURL"),
		AuthKey:    str(cfg, "authKey"),
		Hostname:   str(cfg, "hostname"),
	}, fetchGet)
	if err != nil {
		return toJSError(err) // returned, not thrown: a panic here would end the Go runtime
	}
	obj := jsbridge.Object.New()
	obj.Set("run", js.FuncOf(func(this js.Value, args []js.Value) any {
		n := jsbridge.Arg(args, 0)
		p.Run(Notify{
			State:        strCallback(n, "notifyState"),
			NetMap:       strCallback(n, "notifyNetMap"),
			BrowseToURL:  strCallback(n, "notifyBrowseToURL"),
			PanicRecover: strCallback(n, "notifyPanicRecover"),
			Log:          strCallback(n, "notifyLog"),
		})
		return nil
	}))
	obj.Set("login", js.FuncOf(func(this js.Value, args []js.Value) any {
		return promise(func() error { return p.Login(context.Background()) })
	}))
	obj.Set("logout", js.FuncOf(func(this js.Value, args []js.Value) any {
		return promise(func() error { return p.Logout(context.Background()) })
	}))
	obj.Set("ssh", js.FuncOf(func(this js.Value, args []js.Value) any {
		return jsSSH(p, jsbridge.Arg(args, 0).String(), jsbridge.Arg(args, 1).String(), jsbridge.Arg(args, 2))
	}))
	obj.Set("dial", js.FuncOf(func(this js.Value, args []js.Value) any {
		host, port := jsbridge.Arg(args, 0), jsbridge.Arg(args, 1)
		h, n := "", -1 // Dial refuses these
		if host.Type() == js.TypeString {
			h = host.String()
		}
		if port.Type() == js.TypeNumber && port.Float() == float64(port.Int()) {
			n = port.Int()
		}
		return jsSession(p, jsbridge.Arg(args, 2), func(so SSHOptions) *SSHSession { return p.Dial(h, n, so) })
	}))
	return obj
}

// jsSSH is ipn.ssh(host, user, {rows, cols, command, onData, onBanner, onProgress, onConnected, onDone}).
func jsSSH(p *IPN, host, user string, o js.Value) any {
	return jsSession(p, o, func(so SSHOptions) *SSHSession { return p.SSH(host, user, so) })
}

// jsSession starts a session with o's options and callbacks and returns its handle, {write,
// resize, ack, close, sftp}; session.sftp(opts) opens an SFTP channel with the same handle.
func jsSession(p *IPN, o js.Value, start func(SSHOptions) *SSHSession) any {
	obj := jsbridge.Object.New()
	var funcs []js.Func
	fn := func(name string, f func(args []js.Value)) {
		jf := js.FuncOf(func(this js.Value, args []js.Value) any { f(args); return nil })
		funcs = append(funcs, jf)
		obj.Set(name, jf)
	}
	method := func(name string, f func(args []js.Value) any) {
		jf := js.FuncOf(func(this js.Value, args []js.Value) any { return f(args) })
		funcs = append(funcs, jf)
		obj.Set(name, jf)
	}
	onData, onBanner, onProgress := o.Get("onData"), o.Get("onBanner"), o.Get("onProgress")
	onConnected, onDone, onWritten := o.Get("onConnected"), o.Get("onDone"), o.Get("onWritten")
	var written func(int)
	if onWritten.Type() == js.TypeFunction {
		written = func(n int) { onWritten.Invoke(n) }
	}
	s := start(SSHOptions{
		OnWritten: written,
		Rows:      num(o, "rows"), Cols: num(o, "cols"),
		Command:      str(o, "command"),
		OutputWindow: OutputWindow,
		OnData: func(b []byte) {
			if onData.Type() == js.TypeFunction {
				onData.Invoke(jsbridge.Bytes(b))
			}
		},
		OnBanner: func(text string) {
			if onBanner.Type() == js.TypeFunction {
				onBanner.Invoke(text)
			}
		},
		OnProgress: func(text string) {
			if onProgress.Type() == js.TypeFunction {
				onProgress.Invoke(text)
			}
		},
		OnConnected: func() {
			if onConnected.Type() == js.TypeFunction {
				onConnected.Invoke()
			}
		},
		OnDone: func(code int, err error) {
			if onDone.Type() == js.TypeFunction {
				var jerr any = js.Null()
				if err != nil {
					jerr = toJSError(err)
				}
				onDone.Invoke(code, jerr)
			}
			// The handle's methods are gone now; the Worker drops the handle on onDone.
			for _, f := range funcs {
				f.Release()
			}
		},
	})
	fn("write", func(args []js.Value) {
		v := jsbridge.Arg(args, 0)
		if v.Type() == js.TypeString {
			s.Write([]byte(v.String()))
			return
		}
		b := make([]byte, v.Get("byteLength").Int())
		js.CopyBytesToGo(b, v)
		s.Write(b)
	})
	fn("resize", func(args []js.Value) { s.Resize(jsbridge.Arg(args, 0).Int(), jsbridge.Arg(args, 1).Int()) })
	fn("ack", func(args []js.Value) {
		if v := jsbridge.Arg(args, 0); v.Type() == js.TypeNumber {
			s.Ack(v.Int())
		}
	})
	fn("close", func(args []js.Value) { s.Close() })
	fn("closeWrite", func(args []js.Value) { s.CloseWrite() })
	method("sftp", func(args []js.Value) any {
		return jsSession(p, jsbridge.Arg(args, 0), func(so SSHOptions) *SSHSession { return p.OpenSFTP(s, so) })
	})
	return obj
}

// fetchGet is node.Options.HTTPGet on the browser's fetch: no http.Client in the wasm.
func fetchGet(ctx context.Context, url string) ([]byte, error) {
	ac := js.Global().Get("AbortController").New()
	stop := context.AfterFunc(ctx, func() { ac.Call("abort") })
	defer stop()
	init := map[string]any{"signal": ac.Get("signal"), "cache": "no-store", "credentials": "omit"}
	resp, err := await(js.Global().Call("fetch", url, init))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	if !resp.Get("ok").Bool() {
		return nil, fmt.Errorf("GET %s: HTTP %d %s", url, resp.Get("status").Int(), resp.Get("statusText").String())
	}
	buf, err := await(resp.Call("arrayBuffer"))
	if err != nil {
		return nil, fmt.Errorf("GET %s: reading body: %w", url, err)
	}
	u8 := jsbridge.Uint8Array.New(buf)
	b := make([]byte, u8.Get("byteLength").Int())
	js.CopyBytesToGo(b, u8)
	return b, nil
}

// await blocks the calling goroutine until the promise settles; the JS callbacks only
// hand the outcome to a buffered channel, so they return at once.
func await(p js.Value) (js.Value, error) {
	type result struct {
		v   js.Value
		err error
	}
	ch := make(chan result, 1)
	then := js.FuncOf(func(this js.Value, args []js.Value) any {
		ch <- result{v: jsbridge.Arg(args, 0)}
		return nil
	})
	catch := js.FuncOf(func(this js.Value, args []js.Value) any {
		ch <- result{err: errors.New(jsErrorString(jsbridge.Arg(args, 0)))}
		return nil
	})
	defer then.Release()
	defer catch.Release()
	p.Call("then", then, catch)
	r := <-ch
	return r.v, r.err
}

// promise returns a Promise settled by f, which runs in its own goroutine.
func promise(f func() error) js.Value {
	return jsbridge.Promise(func() (any, error) { return js.Undefined(), f() }, toJSError)
}

// toJSError makes an Error whose code property a program can switch on.
func toJSError(err error) js.Value { return jsbridge.Error(errorMessage(err), errorCode(err)) }

func jsErrorString(v js.Value) string {
	if v.Type() == js.TypeObject && v.Get("message").Type() == js.TypeString {
		return v.Get("message").String()
	}
	return js.Global().Get("String").Invoke(v).String()
}

func str(o js.Value, key string) string {
	if o.Type() != js.TypeObject {
		return ""
	}
	if v := o.Get(key); v.Type() == js.TypeString {
		return v.String()
	}
	return ""
}

func num(o js.Value, key string) int {
	if o.Type() != js.TypeObject {
		return 0
	}
	if v := o.Get(key); v.Type() == js.TypeNumber {
		return v.Int()
	}
	return 0
}

// strCallback returns a Go func that calls o[key](s), or nil if there is no such function.
func strCallback(o js.Value, key string) func(string) {
	if o.Type() != js.TypeObject || o.Get(key).Type() != js.TypeFunction {
		return nil
	}
	f := o.Get(key)
	return func(s string) { f.Invoke(s) }
}
