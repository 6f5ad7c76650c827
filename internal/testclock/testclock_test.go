package testclock

import (
	"testing"
	"time"
)

func TestAdvance(t *testing.T) {
	var c Clock
	if d := time.Since(c.Now()); d < 0 || d > time.Second {
		t.Fatalf("zero Clock is %v off the wall clock", d)
	}
	c.Advance(time.Hour)
	if d := time.Until(c.Now()); d < time.Hour-time.Second || d > time.Hour {
		t.Fatalf("after Advance(1h) the clock is %v ahead, want 1h", d)
	}
	before := c.Now()
	time.Sleep(20 * time.Millisecond)
	if !c.Now().After(before) {
		t.Fatal("the clock stood still")
	}
}
