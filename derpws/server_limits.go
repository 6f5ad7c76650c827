//go:build !js

package derpws

import (
	"time"
)

// Limits of a server on what one client may send; see ServerOptions for the configurable ones.
const (
	// defaultClientBytesPerSecond and defaultClientFramesPerSecond bound what the relay reads
	// from one client connection. They are about twice what one client pushes through the
	// in-process benchmark on a small machine, so honest traffic never meets them; they stop
	// one connection from taking all of a larger relay's CPU.
	defaultClientBytesPerSecond  = 1 << 30
	defaultClientFramesPerSecond = 1_000_000
	// defaultFrameTimeout bounds how long a client may take to send the rest of a frame once
	// its first byte arrived (a 64 KiB frame at 8 KiB/s); idle time between frames is free.
	defaultFrameTimeout = 10 * time.Second
	// defaultMaxConns bounds a relay's connections, in the handshake or connected (about
	// 50 KiB of buffers and goroutines each).
	defaultMaxConns = 20_000
	// maxClientInfoLen bounds a ClientInfo frame: key, nonce and sealed JSON of a few fields
	// (stock clients send about 200 bytes).
	maxClientInfoLen = 8 << 10
	// maxPingLen bounds a Ping frame: 8 bytes, with room for extensions as the stock relay allows.
	maxPingLen = 1000
)

// maxStatsKeys bounds the per-key counters kept for keys no longer connected (anyone may
// connect with fresh keys to a relay without VerifyClient); beyond it those of disconnected
// keys are forgotten. A variable for tests.
var maxStatsKeys = 100_000

// limitOr returns v, or def when v is 0, or 0 (no limit) when v is negative.
func limitOr[T int | time.Duration](v, def T) T {
	switch {
	case v < 0:
		return 0
	case v == 0:
		return def
	}
	return v
}

// tokenBucket is a rate limit read by one goroutine, without locks. It consults the clock only
// when its balance runs out, so a client under its limit costs a subtraction per frame; the
// price is that a client idle for long may send up to twice the burst at once.
type tokenBucket struct {
	rate   float64 // tokens per second; 0 means no limit
	burst  float64
	tokens float64
	last   time.Time // when tokens was last topped up
}

// newTokenBucket returns a full bucket of rate per second holding a tenth of a second of it,
// at least minBurst. rate 0 means no limit.
func newTokenBucket(rate int, minBurst float64) tokenBucket {
	if rate <= 0 {
		return tokenBucket{}
	}
	burst := max(float64(rate)/10, minBurst)
	return tokenBucket{rate: float64(rate), burst: burst, tokens: burst, last: time.Now()}
}

// take charges n tokens and returns how long the caller must wait before it may go on (0 when
// the balance covers them).
func (b *tokenBucket) take(n float64) time.Duration {
	if b.rate == 0 {
		return 0
	}
	b.tokens -= n
	if b.tokens >= 0 {
		return 0
	}
	now := time.Now()
	b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / b.rate * float64(time.Second))
}
