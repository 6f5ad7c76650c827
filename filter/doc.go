// Package filter is the node's stateful packet filter: a tun.Device wrapper that admits the
// inbound packets the node's compiled policy allows, plus replies to connections it opened.
package filter
