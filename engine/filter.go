package engine

import "tsconnect/policy/rules"

// SetFilter sets the inbound packet filter: packets from peers pass when f admits them or
// when they answer a connection this node opened. nil (the start) admits every packet.
func (e *Engine) SetFilter(f *rules.Filter) { e.flt.SetFilter(f) }
