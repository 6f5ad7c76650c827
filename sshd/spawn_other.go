//go:build !linux

package sshd

import (
	"errors"
	"os"
	"syscall"
	"time"
)

var errUnsupported = errors.New("sessions are only supported on Linux")

func canRunAs(*account) error                         { return errUnsupported }
func sysProcAttr(*account, bool) *syscall.SysProcAttr { return nil }
func chownPTY(*os.File, *account) error               { return errUnsupported }
func applyTerminalModes(*os.File, []byte) error       { return errUnsupported }
func hangupGroup(int)                                 {}
func killProcessSession(int, time.Duration)           {}
func unixSignalName(sig syscall.Signal) string        { return sig.String() }

// signalsByName is empty where sessions are unsupported.
var signalsByName = map[string]syscall.Signal{}
