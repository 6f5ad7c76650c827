//go:build js

package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"syscall/js"

	"tsconnect/filexfer"
	"tsconnect/internal/jsbridge"
)

// The bridge installs one global,
//
//	globalThis.__tsconnectFiles = { version, open(channel) }
//
// channel is the main wasm's session.sftp handle as the Worker wraps it: {write(Uint8Array),
// ack(n), close()}. open returns {deliver(Uint8Array), end(error|null), list(path),
// download(path, {offset, size, mtime, onStart(size, mtime), onData, onDone}),
// upload(path, {overwrite, mode, resume, size, onOpen(hidden, from), onAck, onDone}), close()}: the Worker passes the channel's onData to deliver and its onDone to end. list
// returns a Promise of the listing's JSON; a transfer is {ack(n), write(Uint8Array), end(),
// cancel()}. Callbacks are called synchronously from goroutines and must not call back into
// Go synchronously.

func main() {
	js.Global().Set("__tsconnectFiles", js.ValueOf(map[string]any{
		"version": "1",
		"open":    js.FuncOf(func(this js.Value, args []js.Value) any { return open(jsbridge.Arg(args, 0)) }),
	}))
	select {}
}

func open(channel js.Value) any {
	ctx, cancel := context.WithCancel(context.Background())
	ch := filexfer.NewChannel(func(p []byte) {
		channel.Call("write", jsbridge.Bytes(p))
	}, func(n int) { channel.Call("ack", n) }, func() { channel.Call("close") })
	used := false
	fx := filexfer.New(ctx, func() (io.ReadWriteCloser, error) {
		if used { // one channel per open: the Worker opens another for a new session
			return nil, errors.New("the SFTP channel has ended")
		}
		used = true
		return ch, nil
	})
	obj := jsbridge.Object.New()
	set := func(name string, f func(args []js.Value) any) {
		obj.Set(name, js.FuncOf(func(this js.Value, args []js.Value) any { return f(args) }))
	}
	set("deliver", func(args []js.Value) any {
		v := jsbridge.Arg(args, 0)
		b := make([]byte, v.Get("byteLength").Int())
		js.CopyBytesToGo(b, v)
		ch.Deliver(b)
		return nil
	})
	set("end", func(args []js.Value) any {
		var err error
		if v := jsbridge.Arg(args, 0); v.Truthy() {
			err = errors.New(v.Get("message").String())
		}
		ch.End(err)
		return nil
	})
	set("close", func(args []js.Value) any { cancel(); fx.Close(); return nil })
	set("list", func(args []js.Value) any {
		dir := jsbridge.Arg(args, 0)
		return jsbridge.Promise(func() (any, error) {
			if dir.Type() != js.TypeString {
				return nil, &filexfer.Error{Code: filexfer.CodeBadRequest, Err: errors.New("list: the path must be a string")}
			}
			l, err := fx.ListDir(ctx, dir.String())
			if err != nil {
				return nil, err
			}
			b, err := json.Marshal(l)
			return string(b), err
		}, toJSError)
	})
	set("download", func(args []js.Value) any {
		o := jsbridge.Arg(args, 1)
		do := filexfer.DownloadOptions{Offset: intField(o, "offset"), Size: intField(o, "size"), ModTime: intField(o, "mtime")}
		return transfer(o, func(cb filexfer.TransferCallbacks) *filexfer.Transfer {
			return fx.Download(strArg(args, 0), do, cb)
		})
	})
	set("upload", func(args []js.Value) any {
		o := jsbridge.Arg(args, 1)
		var uo filexfer.UploadOptions
		if o.Type() == js.TypeObject {
			uo.Overwrite = o.Get("overwrite").Truthy()
			if m := o.Get("mode"); m.Type() == js.TypeNumber && m.Int() > 0 {
				uo.Mode = uint32(m.Int())
			}
			if r := o.Get("resume"); r.Type() == js.TypeString {
				uo.Resume, uo.Size = r.String(), intField(o, "size")
			}
		}
		return transfer(o, func(cb filexfer.TransferCallbacks) *filexfer.Transfer {
			return fx.Upload(strArg(args, 0), uo, cb)
		})
	})
	return obj
}

// transfer starts a download or upload with o's callbacks and returns its handle.
func transfer(o js.Value, start func(filexfer.TransferCallbacks) *filexfer.Transfer) any {
	obj := jsbridge.Object.New()
	var funcs []js.Func
	set := func(name string, f func(args []js.Value)) {
		jf := js.FuncOf(func(this js.Value, args []js.Value) any { f(args); return nil })
		funcs = append(funcs, jf)
		obj.Set(name, jf)
	}
	call := func(name string, args ...any) {
		if o.Type() == js.TypeObject && o.Get(name).Type() == js.TypeFunction {
			o.Call(name, args...)
		}
	}
	t := start(filexfer.TransferCallbacks{
		OnStart: func(size, mtime int64) { call("onStart", float64(size), float64(mtime)) },
		OnOpen:  func(hidden string, from int64) { call("onOpen", hidden, float64(from)) },
		OnData: func(b []byte) {
			call("onData", jsbridge.Bytes(b))
		},
		OnAck: func(n int) { call("onAck", n) },
		OnDone: func(err error) {
			var jerr any = js.Null()
			if err != nil {
				jerr = toJSError(err)
			}
			call("onDone", jerr)
			for _, f := range funcs {
				f.Release()
			}
		},
	})
	set("ack", func(args []js.Value) {
		if v := jsbridge.Arg(args, 0); v.Type() == js.TypeNumber {
			t.Ack(v.Int())
		}
	})
	set("write", func(args []js.Value) {
		n := jsbridge.Arg(args, 0).Get("byteLength")
		if n.Type() != js.TypeNumber {
			return
		}
		// An oversized chunk fails the upload without being copied.
		b := make([]byte, min(n.Int(), filexfer.MaxUploadChunk+1))
		if len(b) <= filexfer.MaxUploadChunk {
			js.CopyBytesToGo(b, jsbridge.Arg(args, 0))
		}
		t.Write(b)
	})
	set("end", func(args []js.Value) { t.End() })
	set("cancel", func(args []js.Value) { t.Cancel() })
	return obj
}

// toJSError makes an Error whose code property a program can switch on.
func toJSError(err error) js.Value {
	code := filexfer.Code(err)
	if code == "" {
		code = filexfer.CodeFileFailed
	}
	return jsbridge.Error(err.Error(), code)
}

// intField is o[name] as a whole number of at most 2^53 (0 if it is none; filexfer bounds it).
func intField(o js.Value, name string) int64 {
	if o.Type() != js.TypeObject {
		return 0
	}
	v := o.Get(name)
	if v.Type() != js.TypeNumber {
		return 0
	}
	f := v.Float()
	if f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return -1
	}
	return int64(f)
}

func strArg(args []js.Value, i int) string {
	if v := jsbridge.Arg(args, i); v.Type() == js.TypeString {
		return v.String()
	}
	return ""
}
