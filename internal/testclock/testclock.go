// Package testclock is a clock for tests of expiry: real time plus an offset that the test
// advances, for seams such as control.Config.Now.
package testclock

import (
	"sync/atomic"
	"time"
)

// Clock runs with the wall clock, plus whatever Advance added; safe for concurrent use.
// The zero value is the wall clock.
type Clock struct{ offset atomic.Int64 }

// Now returns the wall-clock time plus the offset.
func (c *Clock) Now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

// Advance moves the clock forward by d, at once.
func (c *Clock) Advance(d time.Duration) { c.offset.Add(int64(d)) }
