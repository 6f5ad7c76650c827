//go:build nortc

package main

import (
	"context"
	"errors"
)

type noRTC struct{}

func newRTCAnswerer(*counters, int) (rtcAnswerer, error) { return noRTC{}, nil }

func (noRTC) Answer(context.Context, string) (string, error) {
	return "", errors.New("built with nortc: no WebRTC")
}

func (noRTC) Close() error { return nil }
