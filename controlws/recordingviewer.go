package controlws

import "context"

// Recording viewers: a message pair a recorder node asks control with (a server that
// predates it answers CodeBadRequest, which RecordingViewer returns as ErrUnsupported).
const (
	// TypeRecordingViewer (recorder node → control) asks whether the owner of one of its
	// peers may list and watch session recordings; control answers once with
	// TypeRecordingViewerAnswer. Control answers only a node that an ssh rule's recorder
	// names, about a node of the network.
	TypeRecordingViewer       = "recordingViewer"
	TypeRecordingViewerAnswer = "recordingViewerAnswer"
)

// RecordingViewerRequest is the body of TypeRecordingViewer.
type RecordingViewerRequest struct {
	Node int64 `json:"node"` // the peer's node ID, from the asking node's map
}

// RecordingViewerAnswer is the body of TypeRecordingViewerAnswer.
type RecordingViewerAnswer struct {
	Allowed bool   `json:"allowed"`
	User    string `json:"user,omitempty"`   // the node's owner (login name); empty for a tagged node
	Reason  string `json:"reason,omitempty"` // why not, when not allowed
}

// RecordingViewer asks control whether the owner of node req.Node may view recordings. A
// server without the message returns an error wrapping ErrUnsupported.
func (c *Client) RecordingViewer(ctx context.Context, req RecordingViewerRequest) (*RecordingViewerAnswer, error) {
	var a RecordingViewerAnswer
	if err := c.optionalRoundTrip(ctx, TypeRecordingViewer, &req, TypeRecordingViewerAnswer, &a); err != nil {
		return nil, err
	}
	return &a, nil
}
