//go:build !race

package buildinfo

const raceEnabled = false
