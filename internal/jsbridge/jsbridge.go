//go:build js

// Package jsbridge holds the syscall/js helpers both browser wasms' bridges share (wasm and
// wasmfiles): the JavaScript constructors, arguments, coded errors and promises.
package jsbridge

import "syscall/js"

// The JavaScript constructors the bridges use.
var (
	Uint8Array = js.Global().Get("Uint8Array")
	Object     = js.Global().Get("Object")
	jsPromise  = js.Global().Get("Promise")
	jsError    = js.Global().Get("Error")
)

// Arg is args[i], or undefined when there are fewer arguments.
func Arg(args []js.Value, i int) js.Value {
	if i < len(args) {
		return args[i]
	}
	return js.Undefined()
}

// Error makes an Error with message and a code property a program can switch on.
func Error(message, code string) js.Value {
	e := jsError.New(message)
	e.Set("code", code)
	return e
}

// Bytes copies b into a new Uint8Array.
func Bytes(b []byte) js.Value {
	u8 := Uint8Array.New(len(b))
	js.CopyBytesToJS(u8, b)
	return u8
}

// Promise returns a Promise resolved with f's value, or rejected with toError of its error; f
// runs in its own goroutine.
func Promise(f func() (any, error), toError func(error) js.Value) js.Value {
	exec := js.FuncOf(func(this js.Value, args []js.Value) any {
		resolve, reject := args[0], args[1]
		go func() {
			v, err := f()
			if err != nil {
				reject.Invoke(toError(err))
				return
			}
			resolve.Invoke(v)
		}()
		return nil
	})
	defer exec.Release() // the Promise constructor calls exec synchronously
	return jsPromise.New(exec)
}
