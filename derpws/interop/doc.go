// Package interop tests our DERP relay and client against a pinned release of the stock ones.
// It is its own Go module so that the product never depends on the stock code.
package interop
