package policy

import "github.com/tailscale/hujson"

// MaxRecordingViewers bounds the entries of the recordingViewers section.
const MaxRecordingViewers = 256

// recordingViewers reads the recordingViewers section, this implementation's extension: the
// users (logins, group:, autogroup:member) who besides the network's admins may list and
// watch session recordings.
func (b *builder) recordingViewers(v *hujson.Value) {
	list, ok := b.strList(v, "recordingViewers")
	if !ok {
		return
	}
	if len(list) > MaxRecordingViewers {
		b.errf(list[MaxRecordingViewers].off, "recordingViewers", "more than %d entries", MaxRecordingViewers)
		return
	}
	for _, s := range list {
		if a, ok := b.parseAlias(s, "recordingViewers", ctxViewer); ok {
			b.p.viewers = append(b.p.viewers, a)
		}
	}
}

// RecordingViewer reports whether the policy's recordingViewers name user (a login), who
// holds idpGroups at the identity provider. Admins may watch recordings whatever it says.
func (p *Policy) RecordingViewer(user string, idpGroups []string) bool {
	return user != "" && p.anyMatches(p.viewers, Node{User: user, UserGroups: idpGroups})
}

// Recorder reports whether n is a recorder node: one that an ssh rule's recorder names.
func (p *Policy) Recorder(n Node) bool {
	for _, r := range p.ssh {
		if p.anyMatches(r.recorder, n) {
			return true
		}
	}
	return false
}
