package recnode

import (
	"fmt"
	"net/netip"
	"slices"

	"tsconnect/controlws"
	"tsconnect/policy/rules"
)

// checkSender refuses a recording from addr (node name) unless the map nm, which came
// over a connection of protocol version, lists addr among the nodes an ssh rule naming
// this recorder applies to (controlws.NetworkMap.RecordFrom). A control older than
// controlws.VersionRecording sends no such list: every recording is refused then (fail
// closed), saying so. An over-long list is refused the same way.
func checkSender(nm *controlws.NetworkMap, version int, addr netip.Addr, name string) error {
	switch {
	case version < controlws.VersionRecording:
		return fmt.Errorf("the control server speaks protocol version %d, which does not tell a recorder whose recordings to take (version %d does): upgrade control", version, controlws.VersionRecording)
	case len(nm.RecordFrom) > rules.MaxRecordFrom:
		return fmt.Errorf("the map lists %d nodes to take recordings from, over the limit of %d", len(nm.RecordFrom), rules.MaxRecordFrom)
	}
	if _, ok := slices.BinarySearchFunc(nm.RecordFrom, addr.Unmap(), netip.Addr.Compare); !ok {
		return fmt.Errorf("no ssh rule of node %s names this recorder: it may not send recordings here", name)
	}
	return nil
}
