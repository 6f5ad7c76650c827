//go:build race

package control

// raceSlowdown scales the few wall-clock bounds the issue names: the race detector makes
// everything 5–10× slower.
const raceSlowdown = 5
