//go:build !js

package tunstack

// The receive buffer of a connection natively: grown from tcpBufDefault toward tcpBufMax.
const (
	recvBufDefault = tcpBufDefault
	recvBufMax     = tcpBufMax
)
