//go:build !linux

package pty

import (
	"errors"
	"os"
)

// Open opens a terminal pair; only Linux has one here.
func Open() (master, slave *os.File, err error) { return nil, nil, errors.ErrUnsupported }

// SetSize sets the terminal size on the PTY master; only Linux has one here.
func SetSize(*os.File, uint32, uint32, uint32, uint32) error { return errors.ErrUnsupported }
